/*
 * A swap daemon in C on libswapaccel: several threads store real heap pages (folios of 1 to
 * 8 pages), load them back keeping the entry and check every byte; the pool writes the
 * coldest back to its file; the threads take every page back (exclusive loads, some from the
 * file) and check every byte again. Then the error paths: each returns the documented
 * negative errno and a message.
 *
 *   daemon PAGES_FILE WORK_DIR [THREADS]
 *
 * PAGES_FILE holds raw 4096-byte pages; WORK_DIR receives the swap files. Exits 0 when
 * everything matched, 1 otherwise. C11 + POSIX threads.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <swapaccel.h>

#define PAGE SWAPACCEL_PAGE_SIZE
#define MAX_THREADS 16

static unsigned char *pages;
static size_t npages;
static swapaccel_t *sa;
static int nthreads = 4;

static int failf(const char *what, int rc) {
    fprintf(stderr, "daemon: %s: %d (%s): %s\n", what, rc, swapaccel_strerror(rc),
            swapaccel_last_error());
    return 1;
}

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "daemon: check failed at line %d: ", __LINE__);              \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
            return 1;                                                                    \
        }                                                                                \
    } while (0)

/* Expects `rc` to be -`want`, with a description and a message. */
static int expect(const char *what, int rc, int want) {
    if (rc != -want) {
        fprintf(stderr, "daemon: %s: got %d (%s), want %d\n", what, rc, swapaccel_strerror(rc),
                -want);
        return 1;
    }
    if (swapaccel_strerror(rc)[0] == 0 || swapaccel_last_error()[0] == 0) {
        fprintf(stderr, "daemon: %s: no description\n", what);
        return 1;
    }
    printf("  %-40s -> %-4d %s\n", what, rc, swapaccel_last_error());
    return 0;
}

/* Thread t owns a contiguous share of the pages; page p is stored at slot p. */
struct job {
    int t;
    int phase; /* 0: store + keep loads; 1: exclusive loads */
    int failed;
};

static int run_job(struct job *j) {
    unsigned char buf[PAGE];
    size_t first = npages * (size_t)j->t / (size_t)nthreads;
    size_t end = npages * (size_t)(j->t + 1) / (size_t)nthreads;
    if (j->phase == 0) {
        /* Folios of 1 to 8 consecutive pages (a folio is stored all or nothing). */
        size_t n = 1;
        for (size_t p = first; p < end; p += n, n = n % 8 + 1) {
            if (p + n > end)
                n = end - p;
            uint64_t gen = 0;
            int rc = swapaccel_store(sa, 0, p, pages + p * PAGE, n * PAGE, &gen);
            if (rc != 0)
                return failf("store", rc);
            for (size_t q = p; q < p + n; q++) {
                uint64_t got = 0;
                rc = swapaccel_load(sa, 0, q, buf, PAGE, SWAPACCEL_LOAD_KEEP, &got);
                if (rc != 0)
                    return failf("load keep", rc);
                CHECK(got == gen, "slot %zu: generation %llu, stored %llu", q,
                      (unsigned long long)got, (unsigned long long)gen);
                CHECK(memcmp(buf, pages + q * PAGE, PAGE) == 0, "slot %zu differs (keep)", q);
            }
        }
    } else {
        for (size_t p = first; p < end; p++) {
            int rc = swapaccel_load(sa, 0, p, buf, PAGE, SWAPACCEL_LOAD_EXCLUSIVE, NULL);
            if (rc != 0)
                return failf("load exclusive", rc);
            CHECK(memcmp(buf, pages + p * PAGE, PAGE) == 0, "slot %zu differs (exclusive)", p);
            rc = swapaccel_load(sa, 0, p, buf, PAGE, SWAPACCEL_LOAD_KEEP, NULL);
            CHECK(rc == -ENOENT, "slot %zu still there after an exclusive load: %d", p, rc);
        }
    }
    return 0;
}

static void *worker(void *arg) {
    struct job *j = arg;
    j->failed = run_job(j);
    return NULL;
}

static int run_threads(int phase) {
    pthread_t th[MAX_THREADS];
    struct job jobs[MAX_THREADS];
    for (int t = 0; t < nthreads; t++) {
        jobs[t] = (struct job){.t = t, .phase = phase, .failed = 0};
        if (pthread_create(&th[t], NULL, worker, &jobs[t]) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    int failed = 0;
    for (int t = 0; t < nthreads; t++) {
        pthread_join(th[t], NULL);
        failed |= jobs[t].failed;
    }
    return failed;
}

static int read_pages(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size <= 0 || st.st_size % PAGE != 0) {
        fprintf(stderr, "%s: not a whole number of pages\n", path);
        fclose(f);
        return 1;
    }
    npages = (size_t)st.st_size / PAGE;
    pages = malloc((size_t)st.st_size);
    if (!pages || fread(pages, PAGE, npages, f) != npages) {
        fprintf(stderr, "%s: read failed\n", path);
        fclose(f);
        return 1;
    }
    fclose(f);
    return 0;
}

/* True when the page is one 8-byte word repeated (the pool keeps such pages as a word, and
 * never writes them back). */
static int same_filled(const unsigned char *page) {
    for (size_t i = 8; i < PAGE; i++)
        if (page[i] != page[i % 8])
            return 0;
    return 1;
}

static int error_paths(const char *dir) {
    unsigned char buf[PAGE];
    char path[4096];
    uint64_t gen = 0;
    printf("error paths:\n");
    if (expect("NULL handle", swapaccel_load(NULL, 0, 0, buf, PAGE, 0, NULL), EINVAL) ||
        expect("load of an empty slot", swapaccel_load(sa, 0, 1, buf, PAGE, 0, NULL), ENOENT) ||
        expect("load, unknown mode", swapaccel_load(sa, 0, 1, buf, PAGE, 7, NULL), EINVAL) ||
        expect("load, 100-byte buffer", swapaccel_load(sa, 0, 1, buf, 100, 0, NULL), EINVAL) ||
        expect("store of 100 bytes", swapaccel_store(sa, 0, 1, pages, 100, NULL), EINVAL) ||
        expect("store past the area", swapaccel_store(sa, 0, npages + 63, pages, 2 * PAGE, NULL),
               ERANGE) ||
        expect("load on a type that is off", swapaccel_load(sa, 5, 0, buf, PAGE, 0, NULL),
               ENODEV) ||
        expect("swapon of a type that is on", swapaccel_swapon(sa, 0, 16, NULL), EBUSY) ||
        expect("swapon of type 99", swapaccel_swapon(sa, 99, 16, NULL), EINVAL))
        return 1;

    /* invalidate_if only drops the store it names. */
    int rc = swapaccel_store(sa, 0, 3, pages, PAGE, &gen);
    if (rc != 0)
        return failf("store", rc);
    uint64_t newer = 0;
    if ((rc = swapaccel_store(sa, 0, 3, pages + PAGE, PAGE, &newer)) != 0)
        return failf("store", rc);
    if (expect("invalidate_if, older generation", swapaccel_invalidate_if(sa, 0, 3, gen), ESTALE))
        return 1;
    CHECK(swapaccel_invalidate_if(sa, 0, 3, newer) == 0, "invalidate_if of the newest");
    CHECK(swapaccel_invalidate(sa, 0, 3) == 0, "invalidate of an empty slot is 0");

    /* Backing files the caller opens: checked at swapon. */
    snprintf(path, sizeof path, "%s/wronly", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0, "open %s", path);
    rc = expect("swapon_fd, write-only file", swapaccel_swapon_fd(sa, 2, 64, fd), EBADF);
    close(fd);
    if (rc)
        return 1;
    snprintf(path, sizeof path, "%s/append", dir);
    fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0, "open %s", path);
    rc = expect("swapon_fd, O_APPEND file", swapaccel_swapon_fd(sa, 2, 64, fd), EINVAL);
    close(fd);
    if (rc)
        return 1;
    snprintf(path, sizeof path, "%s/short", dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, "data", 4) == 4, "write %s", path);
    rc = expect("swapon_fd, short file holding data", swapaccel_swapon_fd(sa, 2, 64, fd), EFBIG);
    close(fd);
    if (rc)
        return 1;
    CHECK(expect("swapon_fd, bad descriptor", swapaccel_swapon_fd(sa, 2, 64, -1), EBADF) == 0,
          "bad fd");

    /* A file readable by others is accepted, warned about and counted. Written-back pages
     * corrupted on disk are caught by their checksum. */
    snprintf(path, sizeof path, "%s/loose", dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && fchmod(fd, 0644) == 0, "open %s", path);
    if ((rc = swapaccel_swapon_fd(sa, 2, 4, fd)) != 0)
        return failf("swapon_fd loose", rc);
    size_t p = 0;
    for (uint64_t s = 0; s < 4; s++, p++) {
        while (p < npages && same_filled(pages + p * PAGE))
            p++;
        CHECK(p < npages, "not enough pages that are not same-filled");
        if ((rc = swapaccel_store(sa, 2, s, pages + p * PAGE, PAGE, NULL)) != 0)
            return failf("store type 2", rc);
    }
    int64_t wb = swapaccel_reclaim(sa, 4);
    CHECK(wb == 4, "reclaim of type 2 wrote %lld pages", (long long)wb);
    unsigned char junk[PAGE];
    memset(junk, 0x5a, sizeof junk);
    /* Whatever the file's layout (data pages and their sealing tags), junk over all of it. */
    for (int s = 0; s < 8; s++)
        CHECK(pwrite(fd, junk, PAGE, (off_t)s * PAGE) == PAGE, "pwrite");
    close(fd);
    if (expect("load of a page corrupted on disk", swapaccel_load(sa, 2, 1, buf, PAGE, 0, NULL),
               EBADMSG))
        return 1;
    swapaccel_stats_t st;
    CHECK(swapaccel_stats(sa, &st) == 0, "stats");
    CHECK(st.loose_backing_files == 1, "loose_backing_files %llu",
          (unsigned long long)st.loose_backing_files);
    CHECK(swapaccel_swapoff(sa, 2) == 0, "swapoff 2");
    CHECK(expect("swapoff of a type that is off", swapaccel_swapoff(sa, 2), ENODEV) == 0, "off");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s PAGES_FILE WORK_DIR [THREADS]\n", argv[0]);
        return 2;
    }
    if (argc > 3)
        nthreads = atoi(argv[3]);
    if (nthreads < 1 || nthreads > MAX_THREADS)
        nthreads = 4;
    if (read_pages(argv[1]))
        return 1;

    swapaccel_config_t cfg;
    swapaccel_config_default(&cfg);
    cfg.codec = "deflate:1";
    cfg.device = SWAPACCEL_DEVICE_AUTO;
    int rc = swapaccel_open(&cfg, &sa);
    if (rc != 0)
        return failf("open", rc);

    char swap0[4096];
    snprintf(swap0, sizeof swap0, "%s/swap0", argv[2]);
    /* One slot per page, plus room: the file's apparent size is slots * 4096 (sparse). */
    if ((rc = swapaccel_swapon(sa, 0, npages + 64, swap0)) != 0)
        return failf("swapon", rc);

    if (run_threads(0))
        return 1;
    int64_t wb = swapaccel_reclaim(sa, npages / 4);
    if (wb < 0)
        return failf("reclaim", (int)wb);
    CHECK(wb > 0, "reclaim wrote nothing");
    swapaccel_stats_t st;
    CHECK(swapaccel_stats(sa, &st) == 0, "stats");
    CHECK(st.stored_pages + st.on_disk_pages == npages, "held %llu + %llu of %zu",
          (unsigned long long)st.stored_pages, (unsigned long long)st.on_disk_pages, npages);
    printf("stored %zu pages in %d threads: ratio %.2f, %llu written back, device kind %d "
           "(%llu device pages, %llu software)\n",
           npages, nthreads, st.ratio, (unsigned long long)st.written_back, st.device_kind,
           (unsigned long long)st.device_pages, (unsigned long long)st.software_pages);
    if (run_threads(1))
        return 1;
    CHECK(swapaccel_stats(sa, &st) == 0, "stats");
    CHECK(st.stored_pages == 0 && st.on_disk_pages == 0, "pages left: %llu + %llu",
          (unsigned long long)st.stored_pages, (unsigned long long)st.on_disk_pages);
    CHECK(st.file_loads == (uint64_t)wb, "file loads %llu, written back %lld",
          (unsigned long long)st.file_loads, (long long)wb);
    printf("loaded every page back (%llu from the file); every byte matched\n",
           (unsigned long long)st.file_loads);

    if (error_paths(argv[2]))
        return 1;
    CHECK(swapaccel_swapoff(sa, 0) == 0, "swapoff 0");
    swapaccel_close(sa);
    free(pages);
    printf("ok\n");
    return 0;
}
