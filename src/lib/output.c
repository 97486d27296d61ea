/*
 * Output: aligned text tables and JSON objects. Column widths count
 * characters, not bytes, so UTF-8 summaries line up.
 */
#include <string.h>

#include "internal.h"
#include "lapis/output.h"

struct row {
    char **cells; /* NULL for a full-width line */
    char *line;
};

struct lapis_table {
    size_t ncols;
    struct row *rows;
    size_t nrows;
    bool *right;
};

lapis_table *lapis_table_new(size_t ncols)
{
    lapis_table *t = xcalloc(1, sizeof(*t));
    t->ncols = ncols;
    t->right = xcalloc(ncols, sizeof(bool));
    return t;
}

void lapis_table_align_right(lapis_table *t, size_t col)
{
    if (col < t->ncols)
        t->right[col] = true;
}

char *lapis_sanitize(const char *s)
{
    char *out = xstrdup(s ? s : "");
    for (char *c = out; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    return out;
}

const char *lapis_format_utc(long long t, char buf[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    buf[0] = '\0';
    if (t && gmtime_r(&tt, &tm))
        strftime(buf, 32, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

char *lapis_sanitize_text(const char *s)
{
    char *out = xstrdup(s ? s : "");
    for (char *c = out; *c; c++)
        if (((unsigned char)*c < 0x20 && *c != '\n' && *c != '\t') || *c == 0x7f)
            *c = '?';
    return out;
}

void lapis_table_add(lapis_table *t, const char *const *cells)
{
    struct row r = { .cells = xcalloc(t->ncols, sizeof(char *)) };
    for (size_t i = 0; i < t->ncols; i++)
        r.cells[i] = lapis_sanitize(cells[i]);
    t->rows = xrealloc(t->rows, (t->nrows + 1) * sizeof(*t->rows));
    t->rows[t->nrows++] = r;
}

void lapis_table_add_line(lapis_table *t, const char *text)
{
    struct row r = { .line = lapis_sanitize(text) };
    t->rows = xrealloc(t->rows, (t->nrows + 1) * sizeof(*t->rows));
    t->rows[t->nrows++] = r;
}

size_t lapis_table_rows(const lapis_table *t) { return t->nrows; }

static size_t display_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    return w;
}

void lapis_table_print(const lapis_table *t, FILE *out)
{
    size_t *w = xcalloc(t->ncols, sizeof(size_t));

    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; t->rows[r].cells && c < t->ncols; c++) {
            size_t dw = display_width(t->rows[r].cells[c]);
            if (dw > w[c])
                w[c] = dw;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        const struct row *row = &t->rows[r];
        if (!row->cells) {
            fprintf(out, "%s\n", row->line);
            continue;
        }
        /* The last left-aligned column is not padded: no trailing blanks. */
        size_t last = t->ncols;
        while (last > 0 && !*row->cells[last - 1])
            last--;
        for (size_t c = 0; c < last; c++) {
            size_t pad = w[c] - display_width(row->cells[c]);
            if (t->right[c])
                fprintf(out, "%*s%s", (int)pad, "", row->cells[c]);
            else if (c + 1 == last)
                fputs(row->cells[c], out);
            else
                fprintf(out, "%s%*s", row->cells[c], (int)pad, "");
            if (c + 1 < last)
                fputs("  ", out);
        }
        fputc('\n', out);
    }
    free(w);
}

void lapis_table_free(lapis_table *t)
{
    if (!t)
        return;
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; t->rows[r].cells && c < t->ncols; c++)
            free(t->rows[r].cells[c]);
        free(t->rows[r].cells);
        free(t->rows[r].line);
    }
    free(t->rows);
    free(t->right);
    free(t);
}

const char *lapis_format_size(unsigned long long bytes, char buf[32])
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < ARRAY_SIZE(units)) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, 32, "%llu %s", bytes, units[0]);
    else
        snprintf(buf, 32, "%.1f %s", v, units[u]);
    return buf;
}

cJSON *lapis_json_pkg(lapis_ctx *ctx, lapis_pkg p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", lapis_pkg_name(ctx, p));
    cJSON_AddNumberToObject(o, "epoch", lapis_pkg_epoch(ctx, p));
    cJSON_AddStringToObject(o, "version", lapis_pkg_version(ctx, p));
    cJSON_AddStringToObject(o, "release", lapis_pkg_release(ctx, p));
    cJSON_AddStringToObject(o, "arch", lapis_pkg_arch(ctx, p));
    cJSON_AddStringToObject(o, "repo", lapis_pkg_repoid(ctx, p));
    return o;
}

static const char *const adv_pkg_states[] = { "not-installed", "available", "installed" };

/* "E:V-R" into an rpm-style package object. */
static cJSON *json_evr_pkg(const lapis_advisory_pkg *p)
{
    cJSON *o = cJSON_CreateObject();
    const char *colon = strchr(p->evr, ':');
    const char *v = colon ? colon + 1 : p->evr;
    const char *dash = strrchr(v, '-');
    char *ver = dash ? xstrndup(v, (size_t)(dash - v)) : xstrdup(v);
    cJSON_AddStringToObject(o, "name", p->name);
    cJSON_AddNumberToObject(o, "epoch", colon ? strtoul(p->evr, NULL, 10) : 0);
    cJSON_AddStringToObject(o, "version", ver);
    cJSON_AddStringToObject(o, "release", dash ? dash + 1 : "");
    cJSON_AddStringToObject(o, "arch", p->arch);
    if (p->filename)
        cJSON_AddStringToObject(o, "filename", p->filename);
    cJSON_AddStringToObject(o, "state", adv_pkg_states[p->state]);
    cJSON_AddBoolToObject(o, "reboot_suggested", p->reboot_suggested);
    free(ver);
    return o;
}

static void add_str_or_null(cJSON *o, const char *key, const char *value)
{
    if (value)
        cJSON_AddStringToObject(o, key, value);
    else
        cJSON_AddNullToObject(o, key);
}

cJSON *lapis_json_advisory(const lapis_advisory *a)
{
    cJSON *o = cJSON_CreateObject();
    char issued[32];
    lapis_format_utc(a->issued, issued);
    cJSON_AddStringToObject(o, "id", a->id);
    add_str_or_null(o, "type", a->type);
    add_str_or_null(o, "severity", a->severity);
    add_str_or_null(o, "title", a->title);
    add_str_or_null(o, "issued", *issued ? issued : NULL);
    cJSON *cves = cJSON_AddArrayToObject(o, "cves");
    cJSON *bugs = cJSON_AddArrayToObject(o, "bugs");
    cJSON *refs = cJSON_AddArrayToObject(o, "references");
    for (size_t i = 0; i < a->nrefs; i++) {
        const lapis_advisory_ref *r = &a->refs[i];
        if (r->type && r->id && strcmp(r->type, "cve") == 0)
            cJSON_AddItemToArray(cves, cJSON_CreateString(r->id));
        else if (r->type && r->id && strcmp(r->type, "bugzilla") == 0)
            cJSON_AddItemToArray(bugs, cJSON_CreateString(r->id));
        cJSON *ro = cJSON_CreateObject();
        add_str_or_null(ro, "type", r->type);
        add_str_or_null(ro, "id", r->id);
        add_str_or_null(ro, "href", r->href);
        add_str_or_null(ro, "title", r->title);
        cJSON_AddItemToArray(refs, ro);
    }
    cJSON *pkgs = cJSON_AddArrayToObject(o, "packages");
    for (size_t i = 0; i < a->npkgs; i++)
        cJSON_AddItemToArray(pkgs, json_evr_pkg(&a->pkgs[i]));
    add_str_or_null(o, "description", a->description);
    add_str_or_null(o, "status", a->status);
    cJSON_AddBoolToObject(o, "reboot_suggested", a->reboot_suggested);
    cJSON_AddStringToObject(o, "repo", a->repo);
    return o;
}

cJSON *lapis_json_strv(char *const *v)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; v && v[i]; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

void lapis_json_print(cJSON *doc, FILE *out)
{
    char *s = cJSON_PrintUnformatted(doc);
    if (s) {
        fputs(s, out);
        fputc('\n', out);
        free(s);
    }
}
