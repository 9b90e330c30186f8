// libFuzzer target: one tree block through TreeBlock::parse and both item
// printers (text and JSON). The input is the block; it is zero-padded to the
// smallest node size (4, 16 or 64 KiB) that holds it. Two bytes of the
// checksum area, which parse ignores, choose the checksum type and feature
// flags the printers see.
#include "format.h"
#include "out.h"
#include "print_tree.h"
#include "tree_block.h"

#include <cstring>
#include <memory>

// Runs the target on one input; also used by the regression unit test.
int btk_fuzz_tree_block_one(const uint8_t* data, size_t size) {
    using namespace btk;
    if (size < sizeof(format::header)) return 0;
    const uint32_t ns = size <= 4096 ? 4096 : size <= 16384 ? 16384 : 65536;
    if (size > ns) size = ns;
    auto buf = std::make_unique<uint8_t[]>(ns);
    std::memcpy(buf.get(), data, size);
    PrintContext ctx;
    ctx.nodesize = ns;
    static constexpr uint16_t kTypes[] = {format::CSUM_TYPE_CRC32, format::CSUM_TYPE_XXHASH,
                                          format::CSUM_TYPE_SHA256, format::CSUM_TYPE_BLAKE2};
    ctx.csum_type = kTypes[data[0] & 3];
    ctx.csum_size = ctx.csum_type == format::CSUM_TYPE_CRC32 ? 4 : ctx.csum_type == format::CSUM_TYPE_XXHASH ? 8 : 32;
    ctx.incompat_flags = (data[1] & 1) ? ~0ull : 0;
    ctx.csum_items = data[1] & 2;
    ctx.hide_names = data[1] & 4;
    auto parsed = TreeBlock::parse(std::move(buf), ns);
    if (!parsed) return 0;
    const TreeBlock& b = **parsed;
    {
        Out out(nullptr);
        print_tree_block(out, ctx, b);
    }
    {
        ctx.format = PrintFormat::json;
        Out out(nullptr);
        print_tree_block(out, ctx, b);
    }
    return 0;
}

#ifndef BTK_FUZZ_NO_MAIN
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return btk_fuzz_tree_block_one(data, size); }
#endif
