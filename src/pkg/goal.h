/* The goal struct, shared by solving (solve.c), running (transaction.c) and history. */
#ifndef LAPIS_GOAL_H
#define LAPIS_GOAL_H

#include <solv/solver.h>
#include <solv/transaction.h>

#include "pkg/internal.h"

struct lapis_goal {
    lapis_ctx *ctx;
    unsigned flags;          /* lapis_goal_flags */
    Queue job;               /* the requests */
    Queue work;              /* the last resolve's jobs: the requests plus policy jobs */
    Solver *solver;
    Transaction *trans;
    lapis_trans_item *items;
    size_t nitems;
    char **problems;         /* dnf5's "Problem: ..." entries of the last failed resolve */
    char **log;              /* dnf5's resolve log: "No match for argument: X", ... */
    unsigned hints;          /* lapis_goal_hint: what may help after a failure */
    bool unavailable;        /* a spec matched nothing (or nothing installed) */
    char **user_specs;       /* install specs: their packages become user-installed */
    bool autoremove;
    bool erasing;            /* a remove request: dependents may go too (dnf's allow_uninstall) */
    Queue reasons;           /* pairs (pkg, lapis_reason) recorded for history restores */
    Queue skipped;           /* --skip-broken: the best candidate of each request dropped */
    char **downloaded;       /* package files, after a run */
    char **group_pkgs;       /* names installed for a group: reason "group" (comps.c) */
    char **groups_set;       /* "ID\tNAME NAME..." recorded as installed on success */
    char **groups_del;       /* ids forgotten on success */
    long long history_id;
};

/* problem.c: g->problems and g->hints from the failed solve; the leading rule. */
char *lapis_problem_collect(lapis_goal *g);
/* why.c: -v's debug line per transaction item saying why it is there. */
void lapis_goal_log_reasons(lapis_goal *g);

#endif
