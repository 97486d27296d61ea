/*
 * JSON output: packages, advisories and string lists as cJSON objects, and
 * the document as text. The text tables and sanitizing are in
 * src/shared/term.c.
 */
#include <string.h>

#include "pkg/internal.h"
#include "lapis/output.h"
#include "shared/term.h"

char *lapis_json_text(const cJSON *doc, bool pretty)
{
    char *raw = pretty ? cJSON_Print(doc) : cJSON_PrintUnformatted(doc);
    char *out = raw ? lapis_term_json_escape(raw) : NULL;
    cJSON_free(raw);
    return out;
}

static void add_str_or_null(cJSON *o, const char *key, const char *value)
{
    if (value)
        cJSON_AddStringToObject(o, key, value);
    else
        cJSON_AddNullToObject(o, key);
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
    /* dnf5's %{from_repo}: the history's repo, null when rpm installed it */
    if (lapis_pkg_installed(ctx, p)) {
        char *from = lapis_pkg_from_repo(ctx, p);
        add_str_or_null(o, "from_repo", from);
        free(from);
    }
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
    char *s = lapis_json_text(doc, false);
    if (s) {
        fputs(s, out);
        fputc('\n', out);
        free(s);
    }
}
