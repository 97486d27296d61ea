/*
 * Under "Updating and loading repositories:" (cli_load): one line per repository
 * whose metadata is being fetched (bytes, rate, percent and ETA once the
 * sizes are known), redrawn in place on a terminal. The library reports
 * LAPIS_PROGRESS_METADATA events; this file only draws them (on stderr, like
 * the lines around them), and only when
 * main.c decided the output is a terminal (never with -q or --json).
 */
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static double md_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct cli_md_repo *md_entry(struct cli_mdprogress *p, const char *id)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->repos[i].id, id) == 0)
            return &p->repos[i];
    struct cli_md_repo *v = realloc(p->repos, (p->n + 1) * sizeof(*v));
    if (!v)
        return NULL;
    p->repos = v;
    v[p->n] = (struct cli_md_repo){ .id = lapis_sanitize(id), .start = md_now() };
    return v[p->n].id ? &v[p->n++] : NULL;
}

/* The repo id's column: the line must never wrap, or moving up over the
 * block would land on the wrong line. 0: too narrow to draw at all. */
static int md_id_width(void)
{
    struct winsize ws;
    int cols = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col ? ws.ws_col : 80;
    int w = cols - 51;
    return w < 8 ? 0 : w > 30 ? 30 : w;
}

/* " base   42% |  1.2 MiB/s | 3.4 MiB | ETA 00m02s": dnf5's columns. */
static void md_line(const struct cli_md_repo *e, int idw)
{
    char got[32], rate[32], pct[8] = " ---";
    double el = md_now() - e->start, bps = el > 0.05 ? (double)e->done / el : 0;
    long secs = (long)el;
    bool eta = e->total > e->done && bps > 0;

    if (e->total)
        snprintf(pct, sizeof(pct), "%3llu%%", e->done * 100 / e->total);
    if (eta)
        secs = (long)((double)(e->total - e->done) / bps);
    lapis_format_size((unsigned long long)bps, rate);
    fprintf(stderr, "\r %-*.*s %s | %9s/s | %9s | %s%02ldm%02lds\033[K\n", idw, idw, e->id, pct, rate,
           lapis_format_size(e->done, got), eta ? "ETA " : "", secs / 60, secs % 60);
}

/* Move up over the block drawn last and draw it again: every line ends in
 * a newline, so the cursor never rests on a half-drawn bar. */
static void md_redraw(struct cli_mdprogress *p)
{
    int idw = md_id_width();
    if (!idw)
        return;
    if (p->drawn)
        fprintf(stderr, "\033[%zuA", p->drawn);
    for (size_t i = 0; i < p->n; i++)
        md_line(&p->repos[i], idw);
    p->drawn = p->n;
    fflush(stderr);
}

static void md_reset(struct cli_mdprogress *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->repos[i].id);
    free(p->repos);
    *p = (struct cli_mdprogress){ .enabled = p->enabled, .fetching = p->fetching };
}

void cli_mdprogress_event(struct cli_mdprogress *p, enum lapis_progress_kind k, const char *name,
                          unsigned long long done, unsigned long long total)
{
    struct cli_md_repo *e;

    if (!p || !p->enabled)
        return;
    if (k == LAPIS_PROGRESS_METADATA_DONE) {
        md_reset(p); /* cli_load prints "Repositories loaded." */
        return;
    }
    if (k != LAPIS_PROGRESS_METADATA || !name || !(e = md_entry(p, name)))
        return;
    e->done = done;
    e->total = total;
    md_redraw(p);
}

void cli_mdprogress_cb(enum lapis_progress_kind k, const char *name, unsigned long long done,
                       unsigned long long total, void *ud)
{
    struct cli_mdprogress *p = ud;

    if (p && k == LAPIS_PROGRESS_METADATA && !p->fetching) {
        p->fetching = true; /* what arrives may be parsed (or be an unchanged repomd.xml) */
        cli_heap_release();
    }
    cli_mdprogress_event(p, k, name, done, total);
}

/* A message printed under the block: the next redraw starts below it. */
void cli_mdprogress_detach(struct cli_mdprogress *p)
{
    if (p)
        p->drawn = 0;
}

void cli_mdprogress_free(struct cli_mdprogress *p)
{
    if (p)
        md_reset(p);
}
