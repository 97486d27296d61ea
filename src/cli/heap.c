/* glibc malloc's tuning for the lapis process: the one place that sets it. */
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli.h"

#define HEAP_HUGE_PAGE ((uintptr_t)2 << 20)
#define HEAP_STEP (64 << 20)
#define HEAP_SMALL_BLOCK (128 * 1024)

static void heap_fixed_thresholds(void)
{
    /* Fixed thresholds (glibc otherwise raises them as big blocks are freed): libsolv's
     * arrays grow by realloc, and with mmap'd blocks that is an mremap, not a copy
     * beside the old one; freed heap goes back. Cold makecache of 63k packages:
     * peak RSS 72 -> 64 MB, same time. One arena: the metadata threads (parse while
     * downloading, read-ahead) would otherwise each grow their own heap beside the
     * main one (68 -> 63 MB; they share one lock only when they allocate). */
    mallopt(M_MMAP_THRESHOLD, HEAP_SMALL_BLOCK);
    mallopt(M_TRIM_THRESHOLD, HEAP_SMALL_BLOCK);
    mallopt(M_ARENA_MAX, 1);
}

/* Loading the 63k-package .solv touches ~30 MB of fresh heap, one 4 KiB page fault
 * each: 7.7k faults, a quarter of the warm resolve. So the heap grows in one 64 MiB
 * step marked for transparent huge pages: ~900 faults, warm resolve 97 -> 75 ms
 * (median of 40 runs), RSS +3 MB. The 1 MiB probe comes from the heap (the mmap
 * threshold is raised around it), so sbrk(0) then ends that step. Where THP is off
 * the madvise fails and only the step remains. LAPIS_HEAP_THP=0 skips it (to compare). */
static void heap_huge_step(void)
{
    const char *env = getenv("LAPIS_HEAP_THP");

    if (env && strcmp(env, "0") == 0)
        return;
    mallopt(M_TOP_PAD, HEAP_STEP);
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    void *probe = malloc(1 << 20);
    mallopt(M_MMAP_THRESHOLD, HEAP_SMALL_BLOCK);
    if (!probe)
        return;
    uintptr_t lo = ((uintptr_t)probe + HEAP_HUGE_PAGE - 1) & ~(HEAP_HUGE_PAGE - 1);
    uintptr_t hi = (uintptr_t)sbrk(0) & ~(HEAP_HUGE_PAGE - 1);
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    free(probe);
}

void cli_heap_prepare(void)
{
    heap_fixed_thresholds();
    heap_huge_step();
}

/* The huge step serves loading and solving. Parsing metadata frees as much as it
 * keeps, and a transaction frees what each package needed: a 64 MiB top pad would
 * hold that freed memory resident (cold makecache peak 57 -> 74 MB). So when a
 * metadata download begins (mdprogress.c) or a transaction is confirmed, the heap
 * goes back to growing and shrinking in small steps. */
void cli_heap_release(void)
{
    mallopt(M_TOP_PAD, HEAP_SMALL_BLOCK);
    malloc_trim(0);
}
