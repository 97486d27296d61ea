/*
 * lapis automatic: the unattended update run a systemd timer starts on every
 * host (dnf-automatic's job). Its configuration is dnf-automatic's format;
 * its report goes to stdio, the message of the day, or a JSON file a fleet
 * agent reads. A failure is reported and leaves the root as it was: the
 * transaction itself is all-or-nothing before rpm starts.
 */
#include <errno.h>
#include <spawn.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>

#include "pkg/goal.h"
#include "lapis/output.h"

extern char **environ;

#define DEFAULT_REBOOT_COMMAND "shutdown -r +5 'Rebooting after applying package updates'"

void lapis_automatic_conf_defaults(lapis_automatic_conf *c)
{
    char host[256] = "localhost";
    gethostname(host, sizeof(host) - 1);
    *c = (lapis_automatic_conf){
        .upgrade_type = LAPIS_AUTO_UPGRADE_DEFAULT,
        .download_updates = true,
        .apply_updates = false,
        .reboot = LAPIS_AUTO_REBOOT_NEVER,
        .reboot_command = xstrdup(DEFAULT_REBOOT_COMMAND),
        .random_sleep = 0,
        .emit_via = strv_split("stdio", ","),
        .system_name = xstrdup(host),
        .base_opts = xcalloc(1, sizeof(char *)),
    };
}

void lapis_automatic_conf_clear(lapis_automatic_conf *c)
{
    free(c->reboot_command);
    lapis_strv_free(c->emit_via);
    free(c->system_name);
    lapis_strv_free(c->base_opts);
    memset(c, 0, sizeof(*c));
}

/* ---- automatic.conf ------------------------------------------------------- */

struct auto_parse {
    lapis_ctx *ctx;
    const char *path;
    lapis_automatic_conf *conf;
};

static int bad_value(struct auto_parse *ap, int lineno, const char *key, const char *value,
                     const char *expected)
{
    return lapis_err(ap->ctx, LAPIS_E_CONFIG, "%s:%d: invalid value '%s' for '%s'; expected %s",
                     ap->path, lineno, value, key, expected);
}

static int set_bool(struct auto_parse *ap, int lineno, const char *key, const char *value,
                    bool *field)
{
    int b;
    if (lapis_parse_bool(value, &b) < 0)
        return bad_value(ap, lineno, key, value, "yes or no");
    *field = b;
    return 0;
}

static int parse_emit_via(struct auto_parse *ap, int lineno, const char *value)
{
    _cleanup_strv_ char **items = strv_split(value, ", \t\n");
    for (size_t i = 0; items[i]; i++) {
        const char *e = items[i];
        if (strcmp(e, "stdio") == 0 || strcmp(e, "motd") == 0)
            continue;
        if (str_startswith(e, "json:") && e[5] == '/')
            continue;
        if (str_startswith(e, "json:"))
            return lapis_err(ap->ctx, LAPIS_E_CONFIG, "%s:%d: emitter '%s' needs an absolute "
                             "path: json:/PATH", ap->path, lineno, e);
        return lapis_err(ap->ctx, LAPIS_E_CONFIG, "%s:%d: unknown emitter '%s'; lapis emits via "
                         "stdio, motd and json:/PATH", ap->path, lineno, e);
    }
    lapis_strv_free(ap->conf->emit_via);
    ap->conf->emit_via = TAKE_PTR(items);
    return 0;
}

static int commands_key(struct auto_parse *ap, const char *key, const char *value, int lineno)
{
    lapis_automatic_conf *c = ap->conf;
    if (strcmp(key, "upgrade_type") == 0) {
        if (strcmp(value, "default") == 0)
            c->upgrade_type = LAPIS_AUTO_UPGRADE_DEFAULT;
        else if (strcmp(value, "security") == 0)
            c->upgrade_type = LAPIS_AUTO_UPGRADE_SECURITY;
        else
            return bad_value(ap, lineno, key, value, "default or security");
        return 0;
    }
    if (strcmp(key, "download_updates") == 0)
        return set_bool(ap, lineno, key, value, &c->download_updates);
    if (strcmp(key, "apply_updates") == 0)
        return set_bool(ap, lineno, key, value, &c->apply_updates);
    if (strcmp(key, "reboot") == 0) {
        if (strcmp(value, "never") == 0)
            c->reboot = LAPIS_AUTO_REBOOT_NEVER;
        else if (strcmp(value, "when-changed") == 0)
            c->reboot = LAPIS_AUTO_REBOOT_WHEN_CHANGED;
        else if (strcmp(value, "when-needed") == 0)
            c->reboot = LAPIS_AUTO_REBOOT_WHEN_NEEDED;
        else
            return bad_value(ap, lineno, key, value, "never, when-changed or when-needed");
        return 0;
    }
    if (strcmp(key, "reboot_command") == 0) {
        if (!*value)
            return bad_value(ap, lineno, key, value, "a command");
        free(c->reboot_command);
        c->reboot_command = xstrdup(value);
        return 0;
    }
    if (strcmp(key, "random_sleep") == 0) {
        long long v;
        if (lapis_parse_seconds(value, &v) < 0 || v < 0 || v > 7 * 86400)
            return bad_value(ap, lineno, key, value, "seconds between 0 and 604800");
        c->random_sleep = v;
        return 0;
    }
    if (strcmp(key, "network_online_timeout") == 0)
        return 0; /* dnf-automatic's; systemd's network-online.target does this job here */
    return -ENOENT;
}

static int emitters_key(struct auto_parse *ap, const char *key, const char *value, int lineno)
{
    if (strcmp(key, "emit_via") == 0)
        return parse_emit_via(ap, lineno, value);
    if (strcmp(key, "system_name") == 0) {
        free(ap->conf->system_name);
        ap->conf->system_name = xstrdup(value);
        return 0;
    }
    return -ENOENT;
}

static int auto_cb(const char *section, const char *key, const char *value, int lineno, void *ud)
{
    struct auto_parse *ap = ud;
    int r;

    if (strcmp(section, "base") == 0) {
        /* Checked here, where the line is known, on a scratch copy of the defaults. */
        struct lapis_config scratch;
        lapis_config_defaults(&scratch);
        r = lapis_config_set_main(&scratch, key, value);
        lapis_config_clear(&scratch);
        if (r == -ENOENT)
            return lapis_err(ap->ctx, LAPIS_E_CONFIG, "%s:%d: unknown option '%s' in [base]; "
                             "[base] takes lapis.conf [main] options", ap->path, lineno, key);
        if (r < 0)
            return bad_value(ap, lineno, key, value, "a valid lapis.conf [main] value ([base])");
        strv_push(&ap->conf->base_opts, xasprintf("%s=%s", key, value));
        return 0;
    }
    if (strcmp(section, "commands") == 0)
        r = commands_key(ap, key, value, lineno);
    else if (strcmp(section, "emitters") == 0)
        r = emitters_key(ap, key, value, lineno);
    else if (strcmp(section, "email") == 0 || strcmp(section, "command") == 0 ||
             strcmp(section, "command_email") == 0)
        return 0; /* dnf-automatic's emitter settings: lapis has no such emitters */
    else
        return lapis_err(ap->ctx, LAPIS_E_CONFIG, "%s:%d: '%s' is outside a known section; use "
                         "[commands], [emitters] or [base]", ap->path, lineno, key);
    if (r == -ENOENT)
        return lapis_err(ap->ctx, LAPIS_E_CONFIG, "%s:%d: unknown option '%s' in [%s]; see "
                         "lapis(8), AUTOMATIC UPDATES", ap->path, lineno, key, section);
    return r;
}

int lapis_automatic_conf_read(lapis_ctx *ctx, const char *path, bool must_exist,
                              lapis_automatic_conf *conf)
{
    _cleanup_free_ char *buf = NULL;
    struct auto_parse ap = { ctx, path, conf };
    size_t len;
    int errline = 0, r;

    r = read_file(path, 1 << 20, &buf, &len);
    if (r == -ENOENT && !must_exist)
        return 0;
    if (r < 0)
        return lapis_err(ctx, LAPIS_E_CONFIG, "cannot read %s: %s", path, strerror(-r));
    if (memchr(buf, '\0', len))
        return lapis_err(ctx, LAPIS_E_CONFIG, "%s is not a text file", path);
    r = lapis_ini_parse(buf, len, auto_cb, &ap, &errline);
    if (r == -EINVAL)
        return lapis_err(ctx, LAPIS_E_CONFIG, "%s:%d: garbled line; expected [section], "
                         "KEY=VALUE or a comment", path, errline);
    return r;
}

/* ---- the run --------------------------------------------------------------- */

void lapis_automatic_report_clear(lapis_automatic_report *rep)
{
    for (size_t i = 0; i < rep->nupdates; i++) {
        lapis_automatic_update *u = &rep->updates[i];
        free(u->action); free(u->name); free(u->arch); free(u->evr); free(u->from_evr);
        free(u->repo);
    }
    free(rep->updates);
    free(rep->error);
    lapis_strv_free(rep->advisories);
    lapis_strv_free(rep->reboot_pkgs);
    memset(rep, 0, sizeof(*rep));
}

static void record_updates(lapis_ctx *ctx, lapis_goal *g, lapis_automatic_report *rep)
{
    size_t n;
    const lapis_trans_item *items = lapis_goal_items(g, &n);
    rep->updates = xcalloc(n + 1, sizeof(*rep->updates));
    for (size_t i = 0; i < n; i++) {
        lapis_pkg p = items[i].pkg;
        rep->updates[rep->nupdates++] = (lapis_automatic_update){
            .action = xstrdup(lapis_action_name(items[i].action)),
            .name = xstrdup(lapis_pkg_name(ctx, p)),
            .arch = xstrdup(lapis_pkg_arch(ctx, p)),
            .evr = xstrdup(lapis_pkg_evr(ctx, p)),
            .from_evr = items[i].replaces ? xstrdup(lapis_pkg_evr(ctx, items[i].replaces)) : NULL,
            .repo = xstrdup(lapis_pkg_repoid(ctx, p)),
        };
    }
}

/* Advisories (applicable now) whose fixed version the transaction installs. */
static void record_advisories(lapis_ctx *ctx, lapis_goal *g, lapis_automatic_report *rep)
{
    lapis_advisory *advs = NULL;
    size_t nadv, n;
    const lapis_trans_item *items = lapis_goal_items(g, &n);

    rep->advisories = xcalloc(1, sizeof(char *));
    if (lapis_advisory_query(ctx, NULL, LAPIS_ADV_AVAILABLE, NULL, &advs, &nadv) < 0)
        return;
    for (size_t a = 0; a < nadv; a++) {
        bool fixed = false;
        for (size_t j = 0; j < advs[a].npkgs && !fixed; j++)
            for (size_t i = 0; i < n && !fixed; i++)
                fixed = lapis_action_installs(items[i].action) &&
                        lapis_pkg_fixes(ctx, items[i].pkg, advs[a].pkgs[j].name,
                                        advs[a].pkgs[j].arch, advs[a].pkgs[j].evr);
        if (fixed)
            strv_push(&rep->advisories, xstrdup(advs[a].id));
    }
    lapis_advisories_free(advs, nadv);
}

static int run_reboot_command(lapis_ctx *ctx, const char *cmd)
{
    char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)cmd, NULL };
    pid_t pid;
    int st, r;

    lapis_log(ctx, LAPIS_LOG_INFO, "Running the reboot command: %s", cmd);
    r = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ);
    if (r != 0)
        return lapis_err(ctx, -r, "cannot run the reboot command: %s", strerror(r));
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return lapis_err(ctx, -errno, "reboot command: %s", strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return lapis_err(ctx, -EIO, "the reboot command '%s' failed "
                         "(%s %d); the updates are installed, reboot the host by hand", cmd,
                         WIFEXITED(st) ? "exit status" : "signal",
                         WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    return 0;
}

static int fail(lapis_ctx *ctx, lapis_automatic_report *rep, int r)
{
    rep->status = "failed";
    free(rep->error);
    rep->error = xstrdup(lapis_ctx_error(ctx));
    return r;
}

static int after_apply(lapis_ctx *ctx, const lapis_automatic_conf *conf, lapis_goal *g,
                       lapis_automatic_report *rep)
{
    int r;
    rep->reboot_pkgs = lapis_goal_reboot_pkgs(ctx, g);
    rep->reboot_required = rep->reboot_pkgs[0] != NULL;
    if (rep->reboot_required && (r = lapis_write_reboot_required(ctx, rep->reboot_pkgs)) < 0)
        return r;
    bool reboot = (conf->reboot == LAPIS_AUTO_REBOOT_WHEN_CHANGED && rep->nupdates > 0) ||
                  (conf->reboot == LAPIS_AUTO_REBOOT_WHEN_NEEDED && rep->reboot_required);
    if (!reboot) {
        rep->reboot = rep->reboot_required && conf->reboot == LAPIS_AUTO_REBOOT_NEVER
                          ? "never" : "not-needed";
        return 0;
    }
    if ((r = run_reboot_command(ctx, conf->reboot_command)) < 0) {
        rep->reboot = "failed";
        return r;
    }
    rep->reboot = "scheduled";
    return 0;
}

static bool yes_unattended(const char *question, void *ud)
{
    /* The keys are the ones the administrator configured for the repo (gpgkey=). */
    lapis_log(ud, LAPIS_LOG_INFO, "%s: yes (automatic: the repository's configured key)", question);
    return true;
}

int lapis_automatic_run(lapis_ctx *ctx, const lapis_automatic_conf *conf,
                        lapis_automatic_report *rep)
{
    lapis_goal *g = NULL;
    size_t n;
    int r;

    memset(rep, 0, sizeof(*rep));
    rep->time = (long long)time(NULL);
    rep->reboot = "not-needed";
    if ((r = lapis_ctx_lock(ctx)) < 0 || (r = lapis_load(ctx, 0)) < 0)
        return fail(ctx, rep, r);
    if ((r = lapis_goal_new(ctx, &g)) < 0)
        return fail(ctx, rep, r);
    if (conf->upgrade_type == LAPIS_AUTO_UPGRADE_SECURITY) {
        lapis_advisory_filter f = { .types = LAPIS_ADV_SECURITY };
        r = lapis_goal_upgrade_advisories(g, &f, false, NULL);
    } else {
        r = lapis_goal_upgrade(g, NULL);
    }
    if (r >= 0)
        r = lapis_goal_resolve(g);
    if (r < 0)
        goto out;
    lapis_goal_items(g, &n);
    if (n == 0) {
        rep->status = "none";
        goto out;
    }
    record_updates(ctx, g, rep);
    record_advisories(ctx, g, rep);
    if (!conf->download_updates && !conf->apply_updates) {
        rep->status = "available";
        goto out;
    }
    lapis_ctx_set_confirm(ctx, yes_unattended, ctx);
    lapis_run_opts o = {
        .flags = conf->apply_updates ? 0 : LAPIS_RUN_DOWNLOADONLY,
        .cmdline = conf->upgrade_type == LAPIS_AUTO_UPGRADE_SECURITY
                       ? "automatic (upgrade_type=security)" : "automatic",
        .script_fd = -1,
    };
    if ((r = lapis_goal_run(g, &o)) < 0)
        goto out;
    rep->status = conf->apply_updates ? "applied" : "downloaded";
    rep->history_id = lapis_goal_history_id(g);
    if (conf->apply_updates)
        r = after_apply(ctx, conf, g, rep);
out:
    lapis_goal_free(g);
    return r < 0 ? fail(ctx, rep, r) : 0;
}

/* ---- emitters ---------------------------------------------------------------- */

static const char *status_phrase(const char *status)
{
    if (strcmp(status, "available") == 0)
        return "are available";
    if (strcmp(status, "downloaded") == 0)
        return "have been downloaded";
    return "have been applied";
}

static const char *reboot_outcome(const char *reboot)
{
    return strcmp(reboot, "scheduled") == 0 ? "scheduled"
           : strcmp(reboot, "failed") == 0  ? "command failed"
                                            : "left to the administrator";
}

static char *report_text(const lapis_automatic_conf *conf, const lapis_automatic_report *rep)
{
    char *t = NULL;
    size_t len = 0;
    FILE *f;

    if (strcmp(rep->status, "failed") == 0)
        return xasprintf("lapis automatic on '%s' failed: %s\n", conf->system_name,
                         rep->error ? rep->error : "unknown error");
    if (strcmp(rep->status, "none") == 0)
        return xasprintf("No updates are available on '%s'.\n", conf->system_name);
    if (!(f = open_memstream(&t, &len)))
        return xstrdup("");
    fprintf(f, "The following updates %s on '%s':\n", status_phrase(rep->status),
            conf->system_name);
    for (size_t i = 0; i < rep->nupdates; i++) {
        const lapis_automatic_update *u = &rep->updates[i];
        fprintf(f, "  %-12s %s.%s %s%s%s (%s)\n", u->action, u->name, u->arch,
                u->from_evr ? u->from_evr : "", u->from_evr ? " -> " : "", u->evr, u->repo);
    }
    for (size_t i = 0; rep->advisories && rep->advisories[i]; i++)
        fprintf(f, "%s%s%s", i ? " " : "Advisories: ", rep->advisories[i],
                rep->advisories[i + 1] ? "" : "\n");
    if (rep->reboot_required) {
        fputs("A reboot is required (", f);
        for (size_t i = 0; rep->reboot_pkgs[i]; i++)
            fprintf(f, "%s%s", i ? ", " : "", rep->reboot_pkgs[i]);
        fprintf(f, "); reboot %s.\n", reboot_outcome(rep->reboot));
    }
    fclose(f);
    return t;
}

cJSON *lapis_automatic_report_json(const lapis_automatic_conf *conf,
                                   const lapis_automatic_report *rep)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "system_name", conf->system_name);
    cJSON_AddNumberToObject(doc, "time", (double)rep->time);
    cJSON_AddStringToObject(doc, "upgrade_type",
                            conf->upgrade_type == LAPIS_AUTO_UPGRADE_SECURITY ? "security" : "default");
    cJSON_AddStringToObject(doc, "status", rep->status ? rep->status : "failed");
    if (rep->error)
        cJSON_AddStringToObject(doc, "error", rep->error);
    cJSON *ups = cJSON_AddArrayToObject(doc, "updates");
    for (size_t i = 0; i < rep->nupdates; i++) {
        const lapis_automatic_update *u = &rep->updates[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "action", u->action);
        cJSON_AddStringToObject(o, "name", u->name);
        cJSON_AddStringToObject(o, "arch", u->arch);
        cJSON_AddStringToObject(o, "evr", u->evr);
        if (u->from_evr)
            cJSON_AddStringToObject(o, "from_evr", u->from_evr);
        else
            cJSON_AddNullToObject(o, "from_evr");
        cJSON_AddStringToObject(o, "repo", u->repo);
        cJSON_AddItemToArray(ups, o);
    }
    cJSON_AddItemToObject(doc, "advisories", lapis_json_strv(rep->advisories));
    cJSON_AddBoolToObject(doc, "reboot_required", rep->reboot_required);
    cJSON_AddItemToObject(doc, "reboot_pkgs", lapis_json_strv(rep->reboot_pkgs));
    cJSON_AddStringToObject(doc, "reboot", rep->reboot ? rep->reboot : "not-needed");
    if (rep->history_id)
        cJSON_AddNumberToObject(doc, "history_id", (double)rep->history_id);
    else
        cJSON_AddNullToObject(doc, "history_id");
    return doc;
}

static int emit_motd(lapis_ctx *ctx, const char *text)
{
    _cleanup_close_ int dfd = open_dir_in_root(lapis_ctx_installroot(ctx), "/etc/motd.d", true);
    int r;
    if (dfd < 0)
        return lapis_err(ctx, dfd, "motd emitter: cannot open /etc/motd.d: %s", strerror(-dfd));
    if ((r = write_file_at(dfd, "lapis-automatic", text, strlen(text), 0644)) < 0)
        return lapis_err(ctx, r, "motd emitter: cannot write /etc/motd.d/lapis-automatic: %s",
                         strerror(-r));
    return 0;
}

static int emit_json(lapis_ctx *ctx, const char *path, const lapis_automatic_conf *conf,
                     const lapis_automatic_report *rep)
{
    cJSON *doc = lapis_automatic_report_json(conf, rep);
    char *text = lapis_json_text(doc, true);
    _cleanup_free_ char *withnl = xasprintf("%s\n", text ? text : "{}");
    int r;
    free(text);
    cJSON_Delete(doc);
    if ((r = write_file_atomic(path, withnl, strlen(withnl))) < 0)
        return lapis_err(ctx, r, "json emitter: cannot write %s: %s", path, strerror(-r));
    return 0;
}

int lapis_automatic_emit(lapis_ctx *ctx, const lapis_automatic_conf *conf,
                         const lapis_automatic_report *rep, FILE *out)
{
    _cleanup_free_ char *text = report_text(conf, rep);
    int first = 0;

    for (size_t i = 0; conf->emit_via && conf->emit_via[i]; i++) {
        const char *e = conf->emit_via[i];
        int r = 0;
        if (strcmp(e, "stdio") == 0 && out) {
            char *clean = lapis_sanitize_text(text);
            fputs(clean, out);
            fflush(out);
            free(clean);
        } else if (strcmp(e, "motd") == 0) {
            /* Shown on every login terminal: sanitized like stdio. */
            _cleanup_free_ char *clean = lapis_sanitize_text(text);
            r = emit_motd(ctx, clean);
        } else if (str_startswith(e, "json:")) {
            r = emit_json(ctx, e + 5, conf, rep);
        }
        if (r < 0 && first == 0)
            first = r;
    }
    return first;
}

/* Sleep a random time up to max seconds (the timer's jitter, so a fleet does not
 * hit its mirrors at once). */
void lapis_automatic_random_sleep(lapis_ctx *ctx, long long max)
{
    unsigned long long rnd = 0;
    if (max <= 0)
        return;
    if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
        rnd = (unsigned long long)time(NULL) ^ (unsigned long long)getpid();
    long long secs = (long long)(rnd % (unsigned long long)(max + 1));
    lapis_log(ctx, LAPIS_LOG_INFO, "Waiting %lld s (random_sleep up to %lld s) before updating",
              secs, max);
    struct timespec ts = { .tv_sec = secs };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !lapis_interrupted(ctx))
        ;
}
