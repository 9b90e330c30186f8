// Is a device or image file in use by the running system?
#pragma once

#include "result.h"

#include <string>

namespace btk {

// Fails (Errc::invalid_argument, one line) when `path` is a mounted block
// device, a block device another program holds open exclusively, or an image
// file backing a mounted loop device.
Status check_not_in_use(const std::string& path);

}  // namespace btk
