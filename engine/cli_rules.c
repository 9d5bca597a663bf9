/* engine/cli_rules.c: `flab rules [RULE]`: the rules flab knows and their
 * parameters (type, default or "required", range or choices, doc). */
#include "engine/cli_common.h"
#include "engine/commands.h"
#include "rules/rule.h"
#include <stdio.h>
#include <string.h>

static void print_rule(const Rule *r) {
    printf("%s (version %d%s): %s\n", r->name, r->version,
           r->flags & RULE_EXCLUSIVE ? ", runs alone" : "", r->summary ? r->summary : "");
    for (size_t i = 0; r->params && r->params[i].name; i++) {
        const RuleParam *p = &r->params[i];
        char def[80], range[80] = "";
        if (p->def) snprintf(def, sizeof def, "= %s", *p->def ? p->def : "\"\"");
        else snprintf(def, sizeof def, "required");
        if ((p->type == RULE_INT || p->type == RULE_FLOAT) && p->min <= p->max)
            snprintf(range, sizeof range, " in [%g, %g]", p->min, p->max);
        else if (p->choices) snprintf(range, sizeof range, " one of %s", p->choices);
        printf("  %-14s %-7s %-12s %s%s\n", p->name, rule_type_name(p->type), def,
               p->doc ? p->doc : "", range);
    }
}

int cmd_rules(int argc, char **argv) {
    if (argc > 2) { fprintf(stderr, "usage: flab rules [RULE]\n"); return EXIT_USAGE; }
    if (argc == 2) {
        const Rule *r = rule_find(argv[1]);
        if (!r) { cli_error("unknown rule '%s' (flab rules lists them)", argv[1]); return EXIT_USAGE; }
        print_rule(r);
        return EXIT_OK;
    }
    const Rule *const *all = rule_all();
    for (size_t i = 0; all[i]; i++) {
        if (i) putchar('\n');
        print_rule(all[i]);
    }
    return EXIT_OK;
}
