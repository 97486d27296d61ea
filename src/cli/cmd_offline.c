/*
 * offline status|reboot|clean|_execute (dnf5's offline command): what
 * `--offline` stored, scheduling it for the next boot through /system-update,
 * and the internal _execute that lapis-offline-transaction.service runs in
 * system-update.target. Only the host ("/") is ever rebooted or powered off;
 * with --installroot (or --no-reboot) the command says what it skipped.
 */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

static void info_freep(lapis_offline_info *i)
{
    lapis_offline_info_free(i);
}

static bool on_host(struct cli *c)
{
    return strcmp(lapis_ctx_installroot(c->ctx), "/") == 0;
}

static void print_status(const lapis_offline_info *info)
{
    char *clean = lapis_sanitize(info->cmdline);
    printf("An offline transaction was initiated by the following command:\n\t%s\n", clean);
    free(clean);
    for (size_t i = 0; info->items && info->items[i]; i++) {
        clean = lapis_sanitize(info->items[i]);
        printf("  %s\n", clean);
        free(clean);
    }
    if (info->scheduled)
        printf("It will run at the next boot (/system-update points at it).\n");
    else
        printf("Run `lapis offline reboot` to reboot and perform the offline transaction.\n");
}

static int json_status(struct cli *c, const lapis_offline_info *info, bool stored)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddBoolToObject(doc, "stored", stored);
    if (stored) {
        cJSON_AddStringToObject(doc, "cmdline", info->cmdline);
        cJSON_AddNumberToObject(doc, "time", (double)info->stored);
        cJSON_AddBoolToObject(doc, "scheduled", info->scheduled);
        cJSON_AddBoolToObject(doc, "poweroff", info->poweroff);
        cJSON_AddItemToObject(doc, "items", lapis_json_strv(info->items));
    }
    cli_json_out(c, doc);
    return 0;
}

static int offline_status(struct cli *c)
{
    __attribute__((cleanup(info_freep))) lapis_offline_info info = { 0 };
    int r = lapis_offline_status(c->ctx, &info);
    if (r < 0)
        return cli_fail(c, r);
    if (c->json)
        return json_status(c, &info, r > 0);
    if (r == 0)
        printf("No offline transaction is stored.\n");
    else
        print_status(&info);
    return 0;
}

static int offline_clean(struct cli *c)
{
    int r = lapis_offline_clean(c->ctx);
    if (r < 0)
        return cli_fail(c, r);
    if (!c->quiet && !c->json)
        printf("The offline transaction and its packages were removed.\n");
    return 0;
}

/* systemctl reboot|poweroff; never for an installroot or with --no-reboot. */
static int shut_down(struct cli *c, bool poweroff)
{
    const char *verb = poweroff ? "poweroff" : "reboot";
    if (!on_host(c) || c->no_reboot) {
        if (!c->quiet && !c->json)
            printf("Not running `systemctl %s` (%s).\n", verb,
                   c->no_reboot ? "--no-reboot" : "--installroot is not the host");
        return 0;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("systemctl", "systemctl", verb, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return cli_error(c, LAPIS_E_OFFLINE, "`systemctl %s` failed; reboot by hand to run the "
                         "offline transaction", verb);
    return 0;
}

static int offline_reboot(struct cli *c)
{
    __attribute__((cleanup(info_freep))) lapis_offline_info info = { 0 };
    int r = lapis_offline_status(c->ctx, &info);
    if (r == 0)
        return cli_error(c, LAPIS_E_OFFLINE, "no offline transaction is stored; store one with "
                         "e.g. 'lapis --offline upgrade'");
    if (r < 0 || (r = lapis_offline_schedule(c->ctx, c->poweroff)) < 0)
        return cli_fail(c, r);
    if (!c->quiet && !c->json) {
        print_status(&info);
        printf("The system will %s to apply it.\n", c->poweroff ? "power off after a boot"
                                                               : "reboot");
    }
    return shut_down(c, false);
}

static void goal_freep(lapis_goal **g)
{
    lapis_goal_free(*g);
}

static void print_applied(struct cli *c, lapis_goal *goal)
{
    size_t n = 0;
    const lapis_trans_item *items = lapis_goal_items(goal, &n);
    for (size_t i = 0; i < n; i++) {
        char *clean = lapis_sanitize(lapis_pkg_nevra(c->ctx, items[i].pkg));
        printf("  %s %s\n", lapis_action_name(items[i].action), clean);
        free(clean);
    }
    printf("Complete! (history id %lld)\n", lapis_goal_history_id(goal));
}

struct execute_args {
    lapis_ctx *ctx;
    const lapis_run_opts *opts;
    lapis_goal **goal;
};

static int run_execute(void *arg)
{
    struct execute_args *a = arg;
    return lapis_offline_execute(a->ctx, a->opts, a->goal);
}

/* What the unit runs: apply, then reboot (or power off) as systemd.offline-updates says. */
static int offline_execute(struct cli *c)
{
    __attribute__((cleanup(goal_freep))) lapis_goal *goal = NULL;
    __attribute__((cleanup(info_freep))) lapis_offline_info info = { 0 };
    lapis_run_opts o = { .script_fd = c->json ? STDERR_FILENO : -1 };
    int r = lapis_offline_status(c->ctx, &info);

    if (r == 0) /* another tool's /system-update, or cleaned: nothing of ours to do */
        return cli_error(c, LAPIS_E_OFFLINE, "no offline transaction is stored");
    if (r > 0 && !info.scheduled) /* not ours to reboot either */
        return cli_fail(c, lapis_offline_execute(c->ctx, &o, &goal));
    /* Only the installed system: no repository is read (nor said to be). */
    if (r > 0 && (r = lapis_load(c->ctx, LAPIS_LOAD_NO_REPOS)) >= 0)
        r = cli_with_progress(c, run_execute, &(struct execute_args){ c->ctx, &o, &goal });
    if (r < 0) {
        cli_fail(c, r);
        shut_down(c, info.poweroff); /* a failed update must not leave the machine in limbo */
        return 1;
    }
    if (c->json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "result", "ok");
        cJSON_AddNumberToObject(doc, "history_id", (double)lapis_goal_history_id(goal));
        cli_json_out(c, doc);
    } else if (!c->quiet) {
        print_applied(c, goal);
    }
    return shut_down(c, info.poweroff);
}

static const struct {
    const char *name;
    int (*run)(struct cli *c);
} subs[] = {
    { "status", offline_status },
    { "reboot", offline_reboot },
    { "clean", offline_clean },
    { "_execute", offline_execute },
};

int cmd_offline(struct cli *c)
{
    if (c->nargs != 1) {
        cli_error(c, LAPIS_E_USAGE, "offline takes one of status, reboot, clean, _execute; "
                  "see 'lapis offline --help'");
        return EXIT_USAGE;
    }
    if (c->poweroff && strcmp(c->args[0], "reboot") != 0) {
        cli_error(c, LAPIS_E_USAGE, "--poweroff is an option of offline reboot");
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
        if (strcmp(c->args[0], subs[i].name) == 0)
            return subs[i].run(c);
    cli_error(c, LAPIS_E_USAGE, "unknown offline subcommand '%s' (status, reboot, clean, "
              "_execute)", c->args[0]);
    return EXIT_USAGE;
}
