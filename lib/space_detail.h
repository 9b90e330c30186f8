// Helpers shared by the space code (space.cpp, chunk_alloc.cpp, fst_write.cpp).
#pragma once

#include "chunk.h"

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

namespace btk::space_detail {

// Maps of disjoint [start, start+length) ranges.
void range_add(std::map<uint64_t, uint64_t>& m, uint64_t s, uint64_t l);
void range_remove(std::map<uint64_t, uint64_t>& m, uint64_t s, uint64_t l);
bool range_contains(const std::map<uint64_t, uint64_t>& m, uint64_t s, uint64_t l);

// Logical ranges of a chunk whose copies hold a superblock mirror: the
// 64 KiB stripe around each, never allocated and never free.
std::vector<std::pair<uint64_t, uint64_t>> super_stripes(const Chunk& c,
                                                         const std::map<uint64_t, uint64_t>& dev_sizes);

}  // namespace btk::space_detail
