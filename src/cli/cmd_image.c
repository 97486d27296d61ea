/*
 * lapis image build|lock|inspect (include/lapis/image.h does the work).
 * Options of its own, after the word "image": -o DIR, --format LIST,
 * --arch A, --locked, --cachedir D, --no-cache, --json, -q.
 * Progress: one line per stage on stderr with its time (on a TTY the
 * running stage shows first).
 */
#include <getopt.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "lapis/image.h"

struct image_args {
    struct lapis_image_opts o;
    bool tty;
    bool quiet;
};

enum { IO_FORMAT = 1000, IO_ARCH, IO_LOCKED, IO_CACHEDIR, IO_NOCACHE, IO_JSON };

static const struct option image_opts[] = {
    { "output", required_argument, NULL, 'o' },
    { "format", required_argument, NULL, IO_FORMAT },
    { "arch", required_argument, NULL, IO_ARCH },
    { "locked", no_argument, NULL, IO_LOCKED },
    { "cachedir", required_argument, NULL, IO_CACHEDIR },
    { "no-cache", no_argument, NULL, IO_NOCACHE },
    { "json", no_argument, NULL, IO_JSON },
    { "quiet", no_argument, NULL, 'q' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

static void image_usage(FILE *out)
{
    fprintf(out, "usage: lapis image build [-o DIR] [--format raw,qcow2,vhd,vhdx,iso,oci,oci-archive]\n"
                 "                         [--arch ARCH] [--locked] [--cachedir DIR] [--no-cache] CONFIG\n"
                 "       lapis image lock [--cachedir DIR] CONFIG\n"
                 "       lapis image inspect [--json] OUTPUT\n");
}

static void on_stage(const char *arch, const char *stage, double secs, void *data)
{
    struct image_args *a = data;
    if (a->quiet)
        return;
    if (secs < 0) {
        if (a->tty)
            fprintf(stderr, "  %-9s %-8s ...", stage, arch);
        return;
    }
    fprintf(stderr, "%s  %-9s %-8s %7.1f s\n", a->tty ? "\r" : "", stage, arch, secs);
}

/* Parse image's options; the positionals land in *ret_pos (argv order kept). */
static int parse_image_opts(struct cli *c, struct image_args *a, char ***ret_pos, int *ret_n)
{
    int argc = c->image_argc, opt;   /* argv[0] = "image" stands where getopt wants the program */
    char **argv = c->image_argv;

    optind = 0;    /* 0: getopt re-initializes (main's loop used it) */
    opterr = 0;
    *ret_pos = calloc((size_t)argc + 1, sizeof(char *));
    *ret_n = 0;
    while ((opt = getopt_long(argc, argv, "+:o:qh", image_opts, NULL)) != -1 || optind < argc) {
        if (opt == -1) {
            (*ret_pos)[(*ret_n)++] = argv[optind++];
            continue;
        }
        switch (opt) {
        case 'o': a->o.outdir = optarg; break;
        case IO_FORMAT: a->o.formats = optarg; break;
        case IO_ARCH: a->o.arch = optarg; break;
        case IO_LOCKED: a->o.locked = true; break;
        case IO_CACHEDIR: a->o.cachedir = optarg; break;
        case IO_NOCACHE: a->o.no_cache = true; break;
        case IO_JSON: c->json = true; break;
        case 'q': a->quiet = true; break;
        case 'h': image_usage(stdout); return PARSE_DONE;
        case ':': return cli_error(c, LAPIS_E_USAGE, "%s needs a value", argv[optind - 1]);
        default: return cli_error(c, LAPIS_E_USAGE, "unknown option %s for lapis image "
                                  "(lapis image --help)", argv[optind - 1]);
        }
    }
    return 0;
}

static void setup_args(struct cli *c, struct image_args *a)
{
    a->quiet = a->quiet || c->quiet;
    a->tty = isatty(STDERR_FILENO) && !a->quiet;
    a->o.log_fn = c->log_fn;
    a->o.log_data = c->log_data;
    a->o.stage_fn = on_stage;
    a->o.stage_data = a;
    a->o.interrupt = cli_interrupt_flag();
}

static void print_result_json(const struct lapis_image_result *r)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "outdir", r->outdir);
    cJSON_AddBoolToObject(doc, "cached", r->cached);
    cJSON_AddStringToObject(doc, "cache_key", r->cache_key ? r->cache_key : "");
    cJSON_AddNumberToObject(doc, "source_date_epoch", (double)r->epoch);
    cJSON_AddNumberToObject(doc, "packages", (double)r->npkgs);
    cJSON *outs = cJSON_AddArrayToObject(doc, "outputs");
    for (size_t i = 0; i < r->noutputs; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", r->outputs[i].name);
        cJSON_AddNumberToObject(o, "size", (double)r->outputs[i].size);
        if (r->outputs[i].sha256)
            cJSON_AddStringToObject(o, "sha256", r->outputs[i].sha256);
        else
            cJSON_AddNullToObject(o, "sha256");
        cJSON_AddItemToArray(outs, o);
    }
    cJSON *st = cJSON_AddArrayToObject(doc, "stages");
    for (size_t i = 0; i < r->nstages; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "arch", r->stages[i].arch);
        cJSON_AddStringToObject(o, "stage", r->stages[i].stage);
        cJSON_AddNumberToObject(o, "seconds", r->stages[i].seconds);
        cJSON_AddItemToArray(st, o);
    }
    cJSON *su = cJSON_AddArrayToObject(doc, "setuid_removed");
    for (size_t i = 0; r->setuid_removed && r->setuid_removed[i]; i++)
        cJSON_AddItemToArray(su, cJSON_CreateString(r->setuid_removed[i]));
    lapis_json_print(doc, stdout);
    cJSON_Delete(doc);
}

static void print_result(const struct lapis_image_result *r)
{
    printf("Built %zu output%s in %s (%zu packages, SOURCE_DATE_EPOCH=%lld%s)\n", r->noutputs,
           r->noutputs == 1 ? "" : "s", r->outdir, r->npkgs, r->epoch,
           r->cached ? ", unchanged: from the cache" : "");
    for (size_t i = 0; i < r->noutputs; i++) {
        char *name = lapis_sanitize(r->outputs[i].name);
        printf("  %-40s %12llu  %s\n", name, r->outputs[i].size,
               r->outputs[i].sha256 ? r->outputs[i].sha256 : "(directory)");
        free(name);
    }
    for (size_t i = 0; r->setuid_removed && r->setuid_removed[i]; i++) {
        char *clean = lapis_sanitize(r->setuid_removed[i]);
        printf("setuid/setgid bit removed (not on os.setuidAllow): %s\n", clean);
        free(clean);
    }
}

static int image_fail(struct cli *c, int k, char *err)
{
    int rc = cli_error(c, k, "%s", err && *err ? err : "the image build failed");
    free(err);
    return rc;
}

static int run_build(struct cli *c, struct image_args *a, char **pos, int npos)
{
    struct lapis_image_result *res = NULL;
    char *err = NULL;
    if (npos != 1)
        return cli_error(c, LAPIS_E_USAGE, "lapis image build needs one CONFIG (lapis image --help)");
    a->o.config = pos[0];
    int k = lapis_image_build_run(&a->o, &res, &err);
    if (k < 0)
        return image_fail(c, k, err);
    if (c->json)
        print_result_json(res);
    else if (!a->quiet)
        print_result(res);
    lapis_image_result_free(res);
    return 0;
}

static int run_lock(struct cli *c, struct image_args *a, char **pos, int npos)
{
    char *path = NULL, *err = NULL;
    if (npos != 1)
        return cli_error(c, LAPIS_E_USAGE, "lapis image lock needs one CONFIG");
    a->o.config = pos[0];
    int k = lapis_image_lock_run(&a->o, &path, &err);
    if (k < 0)
        return image_fail(c, k, err);
    if (c->json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "lock", path);
        lapis_json_print(doc, stdout);
        cJSON_Delete(doc);
    } else if (!a->quiet) {
        printf("Wrote %s\n", path);
    }
    free(path);
    return 0;
}

/* One scalar as text: strings as they are, numbers and the rest as JSON. */
static char *scalar_text(const cJSON *v)
{
    char *s = cJSON_IsString(v) ? strdup(v->valuestring) : cJSON_PrintUnformatted(v);
    char *clean = lapis_sanitize(s ? s : "");
    free(s);
    return clean;
}

/* An element of a list: an object as "key=value ...", anything else as itself. */
static void print_element(const cJSON *e)
{
    const cJSON *f;
    if (!cJSON_IsObject(e)) {
        char *t = scalar_text(e);
        printf("  %s\n", t);
        free(t);
        return;
    }
    printf(" ");
    cJSON_ArrayForEach(f, e) {
        char *t = scalar_text(f);
        printf(" %s=%s", f->string, t);
        free(t);
    }
    printf("\n");
}

static void print_inspect_text(const cJSON *doc)
{
    const cJSON *v, *e;
    cJSON_ArrayForEach(v, doc) {
        if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
            printf("%-14s %d\n", v->string, cJSON_GetArraySize(v));
            cJSON_ArrayForEach(e, v)
                print_element(e);
            continue;
        }
        char *t = scalar_text(v);
        printf("%-14s %s\n", v->string, t);
        free(t);
    }
}

static int run_inspect(struct cli *c, char **pos, int npos)
{
    char *json = NULL, *err = NULL;
    if (npos != 1)
        return cli_error(c, LAPIS_E_USAGE, "lapis image inspect needs one OUTPUT");
    int k = lapis_image_inspect(pos[0], &json, &err);
    if (k < 0)
        return image_fail(c, k, err);
    cJSON *doc = cJSON_Parse(json);
    if (c->json)
        lapis_json_print(doc, stdout);
    else
        print_inspect_text(doc);
    cJSON_Delete(doc);
    free(json);
    return 0;
}

int cmd_image(struct cli *c)
{
    struct image_args a = { 0 };
    char **pos = NULL;
    int npos = 0, rc;

    if (!c->image_argv || c->image_argc < 2) {
        image_usage(stderr);
        return cli_error(c, LAPIS_E_USAGE, "lapis image needs a subcommand: build, lock or inspect");
    }
    rc = parse_image_opts(c, &a, &pos, &npos);
    if (rc != 0) {
        free(pos);
        return rc == PARSE_DONE ? 0 : rc;
    }
    setup_args(c, &a);
    if (npos == 0)
        rc = cli_error(c, LAPIS_E_USAGE, "lapis image needs a subcommand: build, lock or inspect");
    else if (strcmp(pos[0], "build") == 0)
        rc = run_build(c, &a, pos + 1, npos - 1);
    else if (strcmp(pos[0], "lock") == 0)
        rc = run_lock(c, &a, pos + 1, npos - 1);
    else if (strcmp(pos[0], "inspect") == 0)
        rc = run_inspect(c, pos + 1, npos - 1);
    else
        rc = cli_error(c, LAPIS_E_USAGE, "unknown image subcommand '%s' (build, lock, inspect)",
                       pos[0]);
    free(pos);
    return rc;
}
