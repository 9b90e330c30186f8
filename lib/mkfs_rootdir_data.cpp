// mkfs --rootdir, step two: file data through a worker pool, then items.
//
// The main thread walks the inodes in creation order. Ahead of it, it cuts
// the file data into jobs (a small file; a 128 KiB window when compressing,
// as the kernel compresses at most that much into one extent; a 1 MiB window
// otherwise) and queues them for the workers, as long as the bytes in flight
// stay under the window. Workers read (only the data ranges of sparse files),
// compress and checksum. The main thread takes the results in job order, so
// allocation and items do not depend on timing: it reserves data space,
// builds extents and hands the data to a writer thread in large sequential
// batches, and emits each inode's items once its data is placed.
#include "compress.h"
#include "csum.h"
#include "mkfs_rootdir_impl.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>

namespace btk {

using namespace format;
using namespace rootdir;

namespace {

constexpr uint64_t PLAIN_WINDOW = 1ULL << 20;
constexpr uint64_t WRITE_BATCH = 4ULL << 20;   // bytes per DataSpace::write call at most
constexpr size_t MAX_QUEUED_JOBS = 4096;        // many small files: bound the bookkeeping
constexpr size_t MAX_QUEUED_WRITES = 2;
constexpr size_t SMALL_BATCH = 32;              // small files per job

uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// Data buffers: mapped pages (aligned, so that the data space may write them
// with O_DIRECT), recycled through free lists per power-of-two size up to
// `keep` bytes, so that memory stays bounded (malloc would scatter them over
// per-thread arenas) and few pages are faulted in anew.
// `bytes` counts the file data alive in the pipeline (queued jobs, buffers not
// yet written): the producer keeps it under the window.
class BufferPool {
public:
    explicit BufferPool(uint64_t keep) : keep_(keep) {}
    ~BufferPool() {
        for (size_t c = 0; c < free_.size(); ++c)
            for (void* p : free_[c]) munmap(p, MIN << c);
    }
    std::atomic<int64_t> bytes{0};

    // A buffer of capacity >= n; returns its class index.
    std::pair<uint8_t*, int> get(size_t n) {
        int c = 0;
        while ((MIN << c) < n) ++c;
        if (c < MAPPED) {
            bytes += int64_t(MIN << c);
            void* p = std::aligned_alloc(MIN, MIN << c);
            if (!p) throw std::bad_alloc();
            return {static_cast<uint8_t*>(p), c};
        }
        {
            // A free buffer of this class or up to two classes larger.
            std::lock_guard l(mu_);
            for (int k = c; k < c + 3 && k < int(free_.size()); ++k) {
                if (free_[size_t(k)].empty()) continue;
                void* p = free_[size_t(k)].back();
                free_[size_t(k)].pop_back();
                kept_ -= MIN << k;
                bytes += int64_t(MIN << k);
                return {static_cast<uint8_t*>(p), k};
            }
        }
        bytes += int64_t(MIN << c);
        void* p = mmap(nullptr, MIN << c, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        return {static_cast<uint8_t*>(p), c};
    }
    void put(uint8_t* p, int c) {
        bytes -= int64_t(MIN << c);
        if (c < MAPPED) return std::free(p);
        {
            std::lock_guard l(mu_);
            if (kept_ + (MIN << c) <= keep_) {
                if (size_t(c) >= free_.size()) free_.resize(size_t(c) + 1);
                free_[size_t(c)].push_back(p);
                kept_ += MIN << c;
                return;
            }
        }
        munmap(p, MIN << c);
    }

private:
    static constexpr size_t MIN = 4096;
    static constexpr int MAPPED = 4;  // classes from 64 KiB up are mapped and kept
    std::mutex mu_;
    std::vector<std::vector<void*>> free_;
    uint64_t kept_ = 0, keep_;
};

// A data buffer from the pool (contents not initialized).
struct Buffer {
    Buffer(size_t n, BufferPool* pool) : size(n), pool_(pool) { std::tie(data, class_) = pool->get(n); }
    ~Buffer() { pool_->put(data, class_); }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    std::span<uint8_t> span() const { return {data, size}; }
    uint8_t* data = nullptr;
    size_t size = 0;

private:
    BufferPool* pool_;
    int class_ = 0;
};
using BufPtr = std::shared_ptr<Buffer>;

struct Piece {
    uint64_t file_off = 0;
    uint64_t len = 0;          // sector multiple (inline: the file size)
    BufPtr raw;                // len bytes, zero past the end of the file
    BufPtr comp;               // compressed, zero-padded to a sector; null if not compressed
    uint64_t comp_len = 0;     // compressed bytes without padding
    std::vector<uint8_t> raw_csums, comp_csums;
    bool is_inline = false;
    bool compress_failed = false;  // tried, and it did not save a sector
};

enum class JobKind : uint8_t { small, compress, plain };

// One window of one file.
struct Task {
    uint32_t inode = 0;
    JobKind kind = JobKind::plain;
    bool last = false;          // the inode's last task
    uint64_t off = 0, len = 0;  // file window
    std::string path;
    size_t dir_len = 0;         // path[0, dir_len) is the directory holding the file
    // results
    std::vector<Piece> pieces;
    uint64_t bytes_read = 0;
    std::optional<Error> error;
};

// What a worker takes at once: one window, or many small files (one wakeup
// for all of them).
struct Job {
    std::vector<Task> tasks;
    int64_t charge = 0;         // budget taken when queued
    bool done = false;
};

struct Options {
    uint32_t ss = 0;
    uint16_t csum_type = 0;
    uint32_t csum_size = 0;
    uint8_t compress = 0;
    int level = 0;
    uint64_t max_inline = 0;
};

void sector_csums(const Options& o, std::span<const uint8_t> data, std::vector<uint8_t>& out) {
    out.resize(data.size() / o.ss * o.csum_size);
    uint8_t c[32];
    for (size_t i = 0; i * o.ss < data.size(); ++i) {
        csum_compute(o.csum_type, data.subspan(i * o.ss, o.ss), c);
        std::memcpy(out.data() + i * o.csum_size, c, o.csum_size);
    }
}

// Reads [off, off+len) (len a sector multiple) into a new buffer; bytes past
// the end of the file read as zeroes.
Result<BufPtr> read_range(int fd, const std::string& path, uint64_t off, uint64_t len, BufferPool* budget,
                          uint64_t& bytes_read) {
    auto b = std::make_shared<Buffer>(size_t(len), budget);
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, b->data + done, len - done, off_t(off + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return make_error(Errc::io, "cannot read {}: {}", path, std::strerror(errno));
        }
        if (r == 0) break;
        done += size_t(r);
    }
    std::memset(b->data + done, 0, len - done);
    bytes_read += done;
    return b;
}

// Compresses the real bytes of a piece (`real` <= piece.len); keeps the result
// only if it saves at least a sector, as the kernel requires.
void try_compress(const Options& o, Piece& p, uint64_t real, BufferPool* budget) {
    auto c = compress(o.compress, std::span<const uint8_t>(p.raw->data, real), o.ss, o.level);
    if (!c || round_up(c->size(), o.ss) + o.ss > p.len) {
        p.compress_failed = true;
        return;
    }
    p.comp = std::make_shared<Buffer>(size_t(round_up(c->size(), o.ss)), budget);
    std::memcpy(p.comp->data, c->data(), c->size());
    std::memset(p.comp->data + c->size(), 0, p.comp->size - c->size());
    p.comp_len = c->size();
    sector_csums(o, p.comp->span(), p.comp_csums);
}

// Opens a job's file relative to its directory, kept open per thread while
// jobs come from the same directory (saves walking the whole path each time).
int open_source(const Task& j) {
    struct DirFd {
        std::string dir;
        int fd = -1;
        ~DirFd() {
            if (fd >= 0) close(fd);
        }
    };
    thread_local DirFd cache;
    std::string& dir = cache.dir;
    int& dfd = cache.fd;
    const std::string_view jdir(j.path.data(), j.dir_len);
    if (dfd < 0 || jdir != dir) {
        if (dfd >= 0) close(dfd);
        dir = jdir;
        dfd = open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
            dir.clear();
            return -1;
        }
    }
    const char* name = j.path.c_str() + j.dir_len + 1;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
    if (fd < 0 && errno == EPERM) fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    return fd;
}

void run_task(const Options& o, const RootdirModel& m, Task& j, BufferPool* budget) {
    const auto& in = m.inodes[j.inode];
    const bool sums = !(in.flags & INODE_NODATASUM);
    const bool may_compress = o.compress != COMPRESS_NONE && sums;
    int fd = open_source(j);
    if (fd < 0) {
        j.error = make_error(Errc::io, "cannot open {}: {}", j.path, std::strerror(errno));
        return;
    }
    auto fail = [&](Error e) {
        j.error = std::move(e);
        j.pieces.clear();
    };
    if (j.kind == JobKind::small) {
        // A file of at most one sector: inline (compressed if that is smaller)
        // as the kernel would, else one sector.
        auto r = read_range(fd, j.path, 0, o.ss, budget, j.bytes_read);
        close(fd);
        if (!r) return fail(std::move(r).error());
        Piece p;
        p.raw = std::move(*r);
        p.len = in.size;
        const bool plain_inline = in.size < o.ss && in.size <= o.max_inline;
        if (may_compress) {
            auto c = compress(o.compress, std::span<const uint8_t>(p.raw->data, in.size), o.ss, o.level);
            if (c && c->size() <= o.max_inline && c->size() < o.ss) {
                p.comp = std::make_shared<Buffer>(c->size(), budget);
                std::memcpy(p.comp->data, c->data(), c->size());
                p.comp_len = c->size();
                p.is_inline = true;
                j.pieces.push_back(std::move(p));
                return;
            }
            p.compress_failed = true;
        }
        if (plain_inline) {
            p.is_inline = true;
        } else {
            p.len = o.ss;
            if (sums) sector_csums(o, p.raw->span(), p.raw_csums);
        }
        j.pieces.push_back(std::move(p));
        return;
    }

    // Data ranges of the window (sector aligned).
    const uint64_t file_end = round_up(in.size, o.ss);
    const uint64_t wend = std::min(j.off + j.len, file_end);
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    if (in.scan_flags & RootdirModel::F_SPARSE) {
        uint64_t pos = j.off;
        while (pos < wend) {
            off_t d = lseek(fd, off_t(pos), SEEK_DATA);
            if (d < 0) break;
            off_t h = lseek(fd, d, SEEK_HOLE);
            uint64_t s = uint64_t(d) / o.ss * o.ss;
            uint64_t e = h < 0 ? wend : std::min(round_up(uint64_t(h), o.ss), wend);
            s = std::max(s, pos);
            if (s >= wend) break;
            if (e > s) ranges.push_back({s, e});
            pos = std::max(e, s + o.ss);
        }
    } else {
        ranges.push_back({j.off, wend});
    }
    for (auto [s, e] : ranges) {
        auto r = read_range(fd, j.path, s, e - s, budget, j.bytes_read);
        if (!r) {
            close(fd);
            return fail(std::move(r).error());
        }
        Piece p;
        p.file_off = s;
        p.len = e - s;
        p.raw = std::move(*r);
        // The kernel does not compress a lone sector that is not the whole file.
        if (j.kind == JobKind::compress && p.len > o.ss) try_compress(o, p, std::min(e, in.size) - s, budget);
        if (!p.comp && sums) sector_csums(o, p.raw->span(), p.raw_csums);
        j.pieces.push_back(std::move(p));
    }
    close(fd);
}

// Workers and the writer thread.
class Pool {
public:
    Pool(const Options& o, const RootdirModel& m, DataSpace& space, BufferPool& bufs, unsigned nworkers)
        : bufs_(bufs), o_(o), m_(m), space_(space) {
        for (unsigned i = 0; i < nworkers; ++i) workers_.emplace_back([this] { work(); });
        writer_ = std::thread([this] { write_loop(); });
    }
    ~Pool() {
        {
            std::lock_guard l(mu_);
            stop_ = true;
        }
        cv_work_.notify_all();
        cv_write_.notify_all();
        for (auto& t : workers_) t.join();
        writer_.join();
    }

    void submit(Job* j) {
        {
            std::lock_guard l(mu_);
            queue_.push_back(j);
        }
        cv_work_.notify_one();
    }
    void wait(Job* j) {
        std::unique_lock l(mu_);
        cv_done_.wait(l, [&] { return j->done; });
    }

    struct Write {
        uint64_t logical = 0;
        std::vector<BufPtr> keep;
        std::vector<std::span<const uint8_t>> pieces;
    };
    // Hands a batch to the writer; waits while too many are queued.
    Status write(Write&& w) {
        std::unique_lock l(mu_);
        cv_write_done_.wait(l, [&] { return writes_.size() < MAX_QUEUED_WRITES || write_error_; });
        if (write_error_) return *write_error_;
        writes_.push_back(std::move(w));
        cv_write_.notify_one();
        return {};
    }
    // Waits until everything handed to the writer is written.
    Status drain() {
        std::unique_lock l(mu_);
        cv_write_done_.wait(l, [&] { return (writes_.empty() && !writing_) || write_error_; });
        if (write_error_) return *write_error_;
        return {};
    }

private:
    void work() {
        for (;;) {
            Job* j;
            {
                std::unique_lock l(mu_);
                cv_work_.wait(l, [&] { return stop_ || !queue_.empty(); });
                if (stop_) return;
                j = queue_.front();
                queue_.pop_front();
            }
            for (auto& t : j->tasks) run_task(o_, m_, t, &bufs_);
            {
                std::lock_guard l(mu_);
                j->done = true;
            }
            cv_done_.notify_all();
        }
    }
    void write_loop() {
        for (;;) {
            Write w;
            {
                std::unique_lock l(mu_);
                cv_write_.wait(l, [&] { return stop_ || !writes_.empty(); });
                if (writes_.empty()) return;
                w = std::move(writes_.front());
                writes_.pop_front();
                writing_ = true;
            }
            Status s = space_.write(w.logical, w.pieces);
            w = Write{};  // frees the buffers before the next batch
            {
                std::lock_guard l(mu_);
                writing_ = false;
                if (!s && !write_error_) write_error_ = std::move(s).error();
            }
            cv_write_done_.notify_all();
        }
    }

    BufferPool& bufs_;
    const Options& o_;
    const RootdirModel& m_;
    DataSpace& space_;
    std::mutex mu_;
    std::condition_variable cv_work_, cv_done_, cv_write_, cv_write_done_;
    std::deque<Job*> queue_;
    std::deque<Write> writes_;
    bool writing_ = false;
    std::optional<Error> write_error_;
    bool stop_ = false;
    std::vector<std::thread> workers_;
    std::thread writer_;
};

// Walks the inodes, places their data, emits their items.
class Populator {
public:
    Populator(const RootdirModel& m, DataSpace& space, ItemSink& sink)
        : m_(m), space_(space), enc_(m, sink), bufs_(m.opts.window_bytes / 2) {
        const auto& mo = m.opts;
        o_.ss = mo.sectorsize;
        o_.csum_type = mo.csum_type;
        o_.csum_size = csum_size(mo.csum_type);
        o_.compress = mo.compress;
        o_.level = mo.compress_level;
        o_.max_inline = max_inline(mo);
        unsigned n = mo.threads ? mo.threads : std::max(1u, std::thread::hardware_concurrency());
        pool_ = std::make_unique<Pool>(o_, m, space, bufs_, n);
    }

    Result<RootdirResult> run() {
        Status s = walk();
        if (s) s = flush_writes();
        Status d = pool_->drain();
        if (!s) {
            // Let the workers finish what they hold before the jobs go away.
            submit_batch();
            for (auto& j : jobs_) pool_->wait(j.get());
            return std::move(s).error();
        }
        if (!d) return std::move(d).error();
        BTK_TRY(enc_.finish());
        res_.csum_items = enc_.csum_items();
        const int def = m_.default_subvol();
        res_.default_subvol = def >= 0 ? m_.subvols[size_t(def)].id : 0;
        return std::move(res_);
    }

private:
    bool has_data(const RootdirModel::Inode& in) const {
        return S_ISREG(in.mode) && in.size > 0 && !(in.scan_flags & RootdirModel::F_NODATA);
    }

    // Queues jobs ahead of the consumer while the budget allows; `need` forces
    // at least one job to exist.
    void produce(bool need) {
        const uint64_t window = m_.opts.window_bytes;
        while (prod_inode_ < m_.inodes.size()) {
            if (!(need && jobs_.empty() && !batch_job_) &&
                (uint64_t(std::max<int64_t>(0, bufs_.bytes.load())) >= window ||
                 jobs_.size() >= MAX_QUEUED_JOBS))
                break;
            const auto& in = m_.inodes[prod_inode_];
            if (!has_data(in)) {
                ++prod_inode_;
                continue;
            }
            Task t;
            t.inode = uint32_t(prod_inode_);
            if (prod_off_ == 0) prod_path_ = m_.opts.dir + "/" + m_.path(uint32_t(prod_inode_));
            t.path = prod_path_;
            t.dir_len = prod_path_.rfind('/');
            const bool compressing = o_.compress != COMPRESS_NONE && !(in.flags & INODE_NODATASUM);
            if (in.size <= o_.ss) {
                t.kind = JobKind::small;
                t.len = o_.ss;
            } else {
                t.kind = compressing ? JobKind::compress : JobKind::plain;
                t.len = compressing ? MAX_UNCOMPRESSED : PLAIN_WINDOW;
                if (in.scan_flags & RootdirModel::F_SPARSE) skip_holes(t, in);
                t.off = prod_off_;
            }
            prod_off_ += t.len;
            if (prod_off_ >= in.size) {
                t.last = true;
                prod_off_ = 0;
                ++prod_inode_;
            }
            // Small files ride together until the batch is full.
            const bool small = t.kind == JobKind::small;
            if (!batch_job_ || !small || batch_job_->tasks.size() >= SMALL_BATCH) {
                submit_batch();
                batch_job_ = std::make_unique<Job>();
            }
            batch_job_->charge += int64_t(t.len);
            bufs_.bytes += int64_t(t.len);
            batch_job_->tasks.push_back(std::move(t));
            if (!small) submit_batch();
            need = false;
        }
        submit_batch();
    }

    void submit_batch() {
        if (!batch_job_) return;
        pool_->submit(batch_job_.get());
        jobs_.push_back(std::move(batch_job_));
    }

    // Sparse files: the next window starts at the next data, and a window
    // past the last data ends the file (an empty job).
    void skip_holes(Task& j, const RootdirModel::Inode& in) {
        int fd = open(j.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return;  // the worker reports it
        off_t d = lseek(fd, off_t(prod_off_), SEEK_DATA);
        close(fd);
        if (d < 0) {
            prod_off_ = in.size;
            j.len = 0;
        } else if (uint64_t(d) >= prod_off_ + j.len) {
            prod_off_ = uint64_t(d) / j.len * j.len;
        }
    }

    // The next task in production order (its job done).
    Result<Task*> next_task() {
        if (cur_job_ && cur_task_ < cur_job_->tasks.size()) return &cur_job_->tasks[cur_task_++];
        produce(true);
        if (jobs_.empty()) return make_error(Errc::invalid_argument, "internal error: data job missing");
        cur_job_ = std::move(jobs_.front());
        cur_task_ = 0;
        jobs_.pop_front();
        pool_->wait(cur_job_.get());
        bufs_.bytes -= cur_job_->charge;
        for (const auto& t : cur_job_->tasks) {
            if (t.error) return *t.error;
            res_.bytes_read += t.bytes_read;
        }
        produce(false);
        return &cur_job_->tasks[cur_task_++];
    }

    Status walk() {
        std::vector<FileExtent> extents;
        for (uint32_t i = 0; i < m_.inodes.size(); ++i) {
            const auto& in = m_.inodes[i];
            extents.clear();
            file_ = File{};
            file_.idx = i;
            if (has_data(in)) {
                for (;;) {
                    BTK_ASSIGN(Task* t, next_task());
                    for (auto& p : t->pieces) BTK_TRY(place(p, extents));
                    t->pieces.clear();  // frees its buffers once written
                    if (t->last) break;
                }
                BTK_TRY(close_extent(extents));
                if (!m_.opts.no_holes) add_hole(extents, round_up(in.size, o_.ss));
            } else if (S_ISREG(in.mode) && in.size > 0 && !m_.opts.no_holes) {
                add_hole(extents, round_up(in.size, o_.ss));
            } else if (S_ISLNK(in.mode)) {
                FileExtent e;
                e.type = FILE_EXTENT_INLINE;
                e.ram_bytes = in.str_len;
                auto t = m_.str(in.str_off, in.str_len);
                e.inline_data.assign(t.begin(), t.end());
                extents.push_back(std::move(e));
                file_.nbytes = in.str_len;
            }
            uint64_t nbytes = file_.nbytes;
            if (in.subvol == 0 && i == m_.subvols[0].root_inode) nbytes = m_.opts.nodesize;  // as mkfs leaves it
            if (file_.nocompress) ++res_.nocompress_inodes;
            BTK_TRY(enc_.inode(i, nbytes, file_.nocompress ? INODE_NOCOMPRESS : 0, extents));
        }
        return {};
    }

    // Explicit hole extents (no-holes off) up to `to`.
    void add_hole(std::vector<FileExtent>& extents, uint64_t to) {
        if (to <= file_.end) return;
        FileExtent e;
        e.file_off = file_.end;
        e.num_bytes = e.ram_bytes = to - file_.end;
        extents.push_back(std::move(e));
        file_.end = to;
    }

    Status place(Piece& p, std::vector<FileExtent>& extents) {
        const auto& in = m_.inodes[file_.idx];
        const uint64_t tree = m_.subvols[in.subvol].id;
        if (p.is_inline) {
            FileExtent e;
            e.type = FILE_EXTENT_INLINE;
            e.ram_bytes = in.size;
            const Buffer& b = p.comp ? *p.comp : *p.raw;
            e.compression = p.comp ? o_.compress : COMPRESS_NONE;
            e.inline_data.assign(b.data, b.data + (p.comp ? p.comp_len : in.size));
            if (p.compress_failed) file_.nocompress = true;
            if (p.comp) res_.uses_compression = true;
            extents.push_back(std::move(e));
            file_.nbytes += in.size;
            file_.end = round_up(in.size, o_.ss);
            ++res_.inline_extents;
            return {};
        }
        if (!m_.opts.no_holes && p.file_off > file_.end) {
            BTK_TRY(close_extent(extents));
            add_hole(extents, p.file_off);
        }
        if (p.compress_failed) file_.nocompress = true;
        if (p.comp && !file_.nocompress) {
            BTK_TRY(close_extent(extents));
            const uint64_t disk = p.comp->size;
            BTK_ASSIGN(DataRange r, space_.reserve(disk, disk));
            if (r.length != disk)
                return make_error(Errc::invalid_argument, "data space handed out {} bytes, {} asked", r.length, disk);
            BTK_TRY(queue_write(r, p.comp, 0, disk));
            FileExtent e;
            e.file_off = p.file_off;
            e.disk_bytenr = r.logical;
            e.disk_num_bytes = disk;
            e.num_bytes = e.ram_bytes = p.len;
            e.compression = o_.compress;
            extents.push_back(std::move(e));
            BTK_TRY(enc_.data_extent(r.logical, disk, tree, in.ino, p.file_off));
            BTK_TRY(enc_.csums(r.logical, p.comp_csums));
            ++res_.data_extents;
            ++res_.compressed_extents;
            res_.uses_compression = true;
            file_.nbytes += p.len;
            file_.end = p.file_off + p.len;
            return {};
        }
        // Plain data: extend the open extent while it stays contiguous.
        const bool sums = !(in.flags & INODE_NODATASUM);
        if (sums && p.raw_csums.empty()) sector_csums(o_, p.raw->span(), p.raw_csums);
        if (file_.open && file_.end != p.file_off) BTK_TRY(close_extent(extents));
        uint64_t done = 0;
        while (done < p.len) {
            uint64_t want = std::min(p.len - done, MAX_EXTENT);
            if (file_.open) want = std::min(want, MAX_EXTENT - extents.back().num_bytes);
            BTK_ASSIGN(DataRange r, space_.reserve(want, o_.ss));
            if (r.length == 0 || r.length > want || r.length % o_.ss)
                return make_error(Errc::invalid_argument, "data space handed out {} bytes, {} asked", r.length, want);
            if (file_.open && (r.run != file_.run || r.logical != file_.logical_end)) BTK_TRY(close_extent(extents));
            if (!file_.open) {
                FileExtent e;
                e.file_off = p.file_off + done;
                e.disk_bytenr = r.logical;
                extents.push_back(std::move(e));
                file_.open = true;
                file_.run = r.run;
            }
            FileExtent& e = extents.back();
            e.disk_num_bytes += r.length;
            e.num_bytes += r.length;
            e.ram_bytes += r.length;
            file_.logical_end = r.logical + r.length;
            BTK_TRY(queue_write(r, p.raw, done, r.length));
            if (sums)
                BTK_TRY(enc_.csums(r.logical, std::span<const uint8_t>(p.raw_csums).subspan(
                                                  done / o_.ss * o_.csum_size, r.length / o_.ss * o_.csum_size)));
            done += r.length;
            if (e.num_bytes >= MAX_EXTENT) BTK_TRY(close_extent(extents));
        }
        file_.nbytes += p.len;
        file_.end = p.file_off + p.len;
        return {};
    }

    Status close_extent(std::vector<FileExtent>& extents) {
        if (!file_.open) return {};
        file_.open = false;
        const auto& in = m_.inodes[file_.idx];
        const FileExtent& e = extents.back();
        ++res_.data_extents;
        return enc_.data_extent(e.disk_bytenr, e.disk_num_bytes, m_.subvols[in.subvol].id, in.ino, e.file_off);
    }

    Status queue_write(const DataRange& r, const BufPtr& b, uint64_t off, uint64_t len) {
        res_.data_bytes += len;
        // Merged within a run only: a range never spans two chunks.
        if (!res_.allocated.empty() && alloc_run_ == r.run &&
            res_.allocated.back().first + res_.allocated.back().second == r.logical)
            res_.allocated.back().second += len;
        else
            res_.allocated.push_back({r.logical, len});
        alloc_run_ = r.run;
        if (!batch_.pieces.empty() && (r.logical != batch_end_ || r.run != batch_run_ ||
                                       batch_end_ - batch_.logical + len > WRITE_BATCH))
            BTK_TRY(flush_writes());
        if (batch_.pieces.empty()) {
            batch_.logical = r.logical;
            batch_run_ = r.run;
        }
        batch_.pieces.push_back({b->data + off, size_t(len)});
        if (batch_.keep.empty() || batch_.keep.back() != b) batch_.keep.push_back(b);
        batch_end_ = r.logical + len;
        return {};
    }

    Status flush_writes() {
        if (batch_.pieces.empty()) return {};
        Status s = pool_->write(std::move(batch_));
        batch_ = Pool::Write{};
        return s;
    }

    struct File {
        uint32_t idx = 0;
        uint64_t nbytes = 0;
        uint64_t end = 0;          // file offset covered so far
        bool nocompress = false;
        bool open = false;         // extents.back() is a plain extent still growing
        uint32_t run = 0;
        uint64_t logical_end = 0;
    };

    const RootdirModel& m_;
    DataSpace& space_;
    ItemEncoder enc_;
    BufferPool bufs_;  // outlives every buffer below
    Options o_;
    RootdirResult res_;
    File file_;
    std::deque<std::unique_ptr<Job>> jobs_;
    std::unique_ptr<Job> batch_job_;  // small files gathering (not queued yet)
    std::unique_ptr<Job> cur_job_;    // the job the consumer takes tasks from
    size_t cur_task_ = 0;
    size_t prod_inode_ = 0;
    uint64_t prod_off_ = 0;
    std::string prod_path_;
    Pool::Write batch_;
    uint64_t batch_end_ = 0;
    uint32_t batch_run_ = 0;
    uint32_t alloc_run_ = 0;
    std::unique_ptr<Pool> pool_;  // last: its threads stop before the rest goes
};

}  // namespace

Result<RootdirResult> rootdir_populate(const RootdirModel& model, DataSpace& space, ItemSink& sink) {
    Populator p(model, space, sink);
    return p.run();
}

}  // namespace btk
