/*
 * Names of transaction actions and install reasons: as history stores them,
 * JSON reports them and the CLI prints them. Below solving and history, which
 * both use them.
 */
#include <string.h>

#include "pkg/internal.h"

static const char *const action_names[] = {
    [LAPIS_ACT_INSTALL] = "install",         [LAPIS_ACT_INSTALL_DEP] = "install-dep",
    [LAPIS_ACT_INSTALL_WEAK] = "install-weak", [LAPIS_ACT_UPGRADE] = "upgrade",
    [LAPIS_ACT_DOWNGRADE] = "downgrade",     [LAPIS_ACT_REINSTALL] = "reinstall",
    [LAPIS_ACT_REMOVE] = "remove",           [LAPIS_ACT_REMOVE_DEP] = "remove-dep",
    [LAPIS_ACT_REMOVE_UNUSED] = "remove-unused", [LAPIS_ACT_OBSOLETED] = "obsoleted",
    [LAPIS_ACT_UPGRADED] = "upgraded",       [LAPIS_ACT_DOWNGRADED] = "downgraded",
};

bool lapis_action_installs(enum lapis_action a)
{
    return a == LAPIS_ACT_INSTALL || a == LAPIS_ACT_INSTALL_DEP || a == LAPIS_ACT_INSTALL_WEAK ||
           a == LAPIS_ACT_UPGRADE || a == LAPIS_ACT_DOWNGRADE || a == LAPIS_ACT_REINSTALL;
}

const char *lapis_action_name(enum lapis_action a)
{
    return (size_t)a < ARRAY_SIZE(action_names) ? action_names[a] : "unknown";
}

int lapis_action_from_name(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(action_names); i++)
        if (action_names[i] && strcmp(action_names[i], name) == 0)
            return (int)i;
    return -1;
}

const char *lapis_reason_name(enum lapis_reason r)
{
    switch (r) {
    case LAPIS_REASON_USER: return "user";
    case LAPIS_REASON_DEP: return "dependency";
    case LAPIS_REASON_WEAK: return "weak-dependency";
    case LAPIS_REASON_GROUP: return "group";
    default: return "unknown";
    }
}

enum lapis_reason lapis_reason_from_name(const char *s)
{
    for (int r = LAPIS_REASON_USER; r <= LAPIS_REASON_GROUP; r++)
        if (strcmp(s, lapis_reason_name(r)) == 0)
            return r;
    return LAPIS_REASON_UNKNOWN;
}
