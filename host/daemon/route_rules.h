/*
 * Routing rules as data (issue 12 item 4; the module is route_rules.{c,h}, not rules.h, because
 * host/deid/rules.h is on the include path of every module that links dimse/deid): which installed
 * apps run on a received series, at which priority, and where their results go. A rules file is
 * JSON (schemas/rules.schema.json documents it; THIS loader is the authority and checks everything
 * the schema says, and more):
 *
 *   {"schema": "agora.rules/1",
 *    "rules": [
 *      {"id": "ct-chest-thin",
 *       "when": {"all": [{"attr": "Modality", "eq": "CT"},
 *                        {"attr": "BodyPartExamined", "in": ["CHEST", "THORAX"]},
 *                        {"attr": "SliceThickness", "le": 2.5}]},
 *       "scope": "series", "run": ["org.example.nodules@1.2.0"], "priority": "urgent",
 *       "send_to": ["pacs-main"]},
 *      {"id": "no-scouts", "when": {"attr": "NumberOfFrames", "eq": 1}, "action": "discard"}],
 *    "fallback": {"action": "default"}}
 *
 * Attributes (the allow-list, nothing else): Modality, BodyPartExamined, SOPClassUID (text);
 * SliceThickness, NumberOfFrames, Rows, Columns (numbers); CallingAETitle, CalledAETitle (the
 * association's AE titles, "" for STOW), Origin ("dimse" | "stow"). Names, IDs, dates,
 * descriptions (SeriesDescription is free text) and every other attribute are refused at load
 * with a message saying why: a rule on them would make routing depend on PHI.
 *
 * Operators: eq, ne, in (text or number, by the attribute's type), lt, le, gt, ge (numbers
 * only), exists (true|false). Conditions combine with {"all": [...]}, {"any": [...]},
 * {"not": COND}. An ABSENT attribute (empty text, a NAN or non-finite SliceThickness, a 0 count)
 * fails every comparison, ne included; only {"exists": false} is true for it (write
 * {"not": {"attr": "X", "eq": V}} for "not V or absent").
 *
 * Semantics (documented in docs/clinic-guide.md "Routing rules"):
 *   - EVERY rule whose `when` holds applies (mercure's semantics), in file order;
 *   - a matching discard rule wins over everything: nothing runs on the series;
 *   - one plugin named by several matching rules runs ONCE: its first rule (file order) gives
 *     rule_id; scope is "study" if any of them says study (the study includes the series);
 *     priority is the highest (urgent > normal > offpeak); send_to is the union in order of
 *     first appearance;
 *   - when no rule matches, "fallback" applies: a rule body without `when` ({"run": ...}),
 *     {"action": "discard"}, or {"action": "default"} (the default rule below). No fallback:
 *     nothing runs (AGORA__ROUTE_NONE).
 *   - no rules at all (r == NULL): the default rule: every installed app whose manifest accepts
 *     the series' modality (frame bounds are the pipeline's, at run time), scope from its
 *     manifest, priority normal, send_to the default destination.
 * "default" as a destination name means the daemon's default destination (--send-to); a rule
 * without send_to sends there. An empty send_to keeps the results in the home only.
 *
 * Explanations: agora__rules_eval reports each step to an optional callback, naming rule ids,
 * attribute NAMES, operators and pass/fail/absent, never a value read from the series, so they
 * may go to logs. (The rule's own constants are the operator's text, not patient data; they are
 * not in the steps either, the caller has the rules file.)
 *
 * Using a plan (the daemon): enqueue one job per match (agora__job_spec: plugin_id and
 * plugin_version, scope, priority, rule_id; the queue's rule_id for the default rule is "", ours
 * is "default"). A match may name several destinations: deliver that one job's results to each;
 * one job per destination would collide on the queue's unique key, which has no destination.
 * Across the series of one study, a plugin routed with scope "study" from any series runs once
 * on the whole study, which covers its "series" matches in that study.
 *
 * Ownership: agora__rules is immutable after load and may be shared by threads read-only. A
 * plan's strings point into the rules and the apps passed to eval (borrowed: keep both alive
 * while the plan is used); the plan's arrays are its own (agora__route_plan_free).
 */
#ifndef AGORA_DAEMON_ROUTE_RULES_H
#define AGORA_DAEMON_ROUTE_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "route_attrs.h"
#include "trust.h"

/* Bounds of a rules file (the loader refuses more, naming the bound). */
#define AGORA__RULES_FILE_MAX  ((size_t)256 * 1024) /* bytes */
#define AGORA__RULES_MAX       256u                 /* rules in a file */
#define AGORA__RULES_COND_MAX  64u                  /* condition nodes in one rule's when */
#define AGORA__RULES_DEPTH_MAX 8u                   /* nesting of all/any/not */
#define AGORA__RULES_LIST_MAX  32u                  /* items of in, run, send_to, all, any */
#define AGORA__RULES_ID_MAX    64u                  /* rule id, destination name */
#define AGORA__RULES_DESC_MAX  512u                 /* a rule's "description" (operator text) */
#define AGORA__RULES_SCHEMA    "agora.rules/1"

/* Priorities, the queue's values (agora__job_spec.priority). */
#define AGORA__RULES_OFFPEAK (-1)
#define AGORA__RULES_NORMAL  0
#define AGORA__RULES_URGENT  1

/* Rule ids of the plans that did not come from a rule of the file. */
#define AGORA__RULES_ID_DEFAULT   "default"  /* the default rule (no rules, or fallback default) */
#define AGORA__RULES_ID_FALLBACK  "fallback" /* the file's fallback body */
#define AGORA__RULES_DEST_DEFAULT "default"  /* the daemon's default destination */

typedef struct agora__rules agora__rules;

/* Read and validate a rules file (at most AGORA__RULES_FILE_MAX bytes). On error err says what
 * is wrong where ("rules.json: rules[2].when.all[0]: SeriesDescription is free text ...") and
 * the code is AGORA_EINVAL (invalid), AGORA_ELIMIT (a bound), AGORA__ERR(errno) (unreadable). */
int agora__rules_load(const char *path, agora__rules **out, agora__error *err);
/* The same from bytes; name prefixes messages ("rules.json"). */
int agora__rules_parse(const char *text, size_t len, const char *name, agora__rules **out,
                       agora__error *err);
void agora__rules_free(agora__rules *r);

/* What the file holds (for `agora rules check` and the daemon's start-up line). */
size_t agora__rules_count(const agora__rules *r);
const char *agora__rules_rule_id(const agora__rules *r, size_t i); /* NULL past the end */
/* The fallback: "none", "run", "discard" or "default". */
const char *agora__rules_fallback(const agora__rules *r);
/* Every destination name the file uses ("default" included when a rule sends there), in order
 * of first appearance, so the daemon can refuse a rules file naming an unknown destination at
 * start. *names is malloc'ed (free() it); the strings are r's. */
int agora__rules_destinations(const agora__rules *r, const char ***names, size_t *n,
                              agora__error *err);

typedef enum agora__route_action {
    AGORA__ROUTE_NONE,    /* no rule matched and there is no fallback: nothing runs */
    AGORA__ROUTE_RUN,     /* matches[] are the jobs (possibly none: every named app skipped) */
    AGORA__ROUTE_DISCARD, /* a discard rule (or the discard fallback) matched: nothing runs */
} agora__route_action;

/* One job to enqueue for the series, after merging: every plugin appears once in a plan. */
typedef struct agora__rule_match {
    const char *rule_id;        /* the first rule naming it; "default" or "fallback" */
    const char *scope;          /* "series" | "study" */
    const char *plugin_id;      /* reverse-DNS id */
    const char *plugin_version; /* the installed build's (apps given), else the rule's or "" */
    int priority;               /* AGORA__RULES_URGENT | _NORMAL | _OFFPEAK */
    const char *const *send_to; /* destination names ("default": the daemon's default) */
    size_t n_send_to;
} agora__rule_match;

typedef struct agora__route_plan {
    agora__route_action action;
    const char *rule_id;        /* RUN: first matching rule ("fallback"/"default"); DISCARD: the
                                   discarding rule; NONE: NULL */
    agora__rule_match *matches; /* owned */
    size_t n_matches;
    size_t n_skipped; /* plugins named by matching rules but not run (see the explain steps) */
    const char **send_storage_; /* owned: the merged send_to arrays */
} agora__route_plan;

void agora__route_plan_free(agora__route_plan *p);
/* "none", "run", "discard". */
const char *agora__route_action_name(agora__route_action a);
/* One PHI-free log fragment for a plan, "action=run rule=ct-chest-thin jobs=2 skipped=0" (rule
 * ids are the operator's [A-Za-z0-9._-] names), into buf (always terminated). */
void agora__route_plan_describe(const agora__route_plan *p, char *buf, size_t size);
/* "urgent", "normal", "offpeak". */
const char *agora__rules_priority_name(int priority);

/* One step of an evaluation, for explanations. Every string is static or borrowed from the
 * rules/apps; none holds a value from the series. Valid during the callback only. */
typedef enum agora__rules_step_kind {
    AGORA__RULES_STEP_RULE,     /* a rule was evaluated: outcome = matched or not */
    AGORA__RULES_STEP_COND,     /* a leaf condition: attr, op, outcome (absent: attr missing) */
    AGORA__RULES_STEP_GROUP,    /* all/any/not finished: op is "all"|"any"|"not" */
    AGORA__RULES_STEP_SKIP,     /* a plugin of a matching rule is not run: reason says why */
    AGORA__RULES_STEP_FALLBACK, /* no rule matched: the fallback applies (op: its kind) */
    AGORA__RULES_STEP_DEFAULT,  /* the default rule considered plugin_id: outcome = accepted */
} agora__rules_step_kind;

typedef enum agora__rules_outcome {
    AGORA__RULES_FAIL = 0,
    AGORA__RULES_PASS = 1,
    AGORA__RULES_ABSENT = 2, /* COND only: the attribute is absent (the comparison fails) */
} agora__rules_outcome;

typedef struct agora__rules_step {
    agora__rules_step_kind kind;
    const char *rule_id; /* the rule being evaluated ("fallback"/"default" for those) */
    unsigned depth;      /* nesting under the rule (0: the rule itself) */
    const char *attr;    /* COND: the attribute name */
    const char *op;      /* COND: eq ne in lt le gt ge exists; GROUP: all any not */
    agora__rules_outcome outcome;
    const char *plugin_id; /* SKIP, DEFAULT */
    const char *reason;    /* SKIP: static text ("not installed", "revoked", ...) */
} agora__rules_step;

typedef void (*agora__rules_explain_fn)(void *arg, const agora__rules_step *step);

/* Route one series. r NULL: the default rule. apps: the installed builds (agora__trust_list's
 * array; only status OK with a parsed manifest are eligible), or NULL when unknown (`rules test`
 * without a clinic home): rule plugins are then taken as written and the default rule yields no
 * jobs. With apps, a plugin a rule names is skipped (a SKIP step) when it is not installed, not
 * at the named version, not allowed (revoked...), or its manifest does not accept the series'
 * modality: the pipeline would refuse the job anyway. explain may be NULL.
 * 0 and *out filled (free with agora__route_plan_free), or AGORA_ENOMEM/AGORA_EINVAL. */
int agora__rules_eval(const agora__rules *r, const agora__trust_plugin *apps, size_t n_apps,
                      const agora__route_attrs *a, agora__route_plan *out,
                      agora__rules_explain_fn explain, void *arg, agora__error *err);

#endif
