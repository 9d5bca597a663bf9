/* tests/test_rules.c: the rule interface (rules/rule.h): the registry, the
 * accessors a rule uses, the progress/metrics protocol to the engine, and
 * the `command` rule run directly (without the engine). */
#include "engine/params.h"
#include "rules/rule_priv.h"
#include "util/error.h"
#include "util/file.h"
#include "tests/testlib.h"
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

extern const Rule rule_command;

static void test_registry(void) {
    CHECK(rule_find("command") == &rule_command);
    CHECK(rule_find("nosuch") == NULL);
    const Rule *const *all = rule_all();
    size_t n = 0;
    for (; all[n]; n++) {
        const Rule *r = all[n];
        CHECKF(r->name && r->run && r->version >= 1 && r->params, "rule %zu incomplete", n);
        CHECKF(rule_find(r->name) == r, "%s: duplicate name", r->name);
        for (size_t i = 0; r->params[i].name; i++) {
            const RuleParam *p = &r->params[i];
            CHECKF(rule_param_index(r, p->name) == (int)i, "%s.%s twice", r->name, p->name);
            char *norm = NULL;   /* every default is itself a valid value */
            CHECKF(!p->def || param_normalise(p, p->def, &norm) == 0, "%s.%s: bad default: %s",
                   r->name, p->name, flab_errmsg());
            CHECKF(p->doc && *p->doc, "%s.%s has no doc", r->name, p->name);
            free(norm);
        }
    }
    CHECK(n >= 1);
    CHECK(rule_nparams(&rule_command) == 3);
    CHECK(rule_param_index(&rule_command, "inputs") == 1 && rule_param_index(&rule_command, "x") == -1);
    CHECK(!strcmp(rule_type_name(RULE_PATHS), "paths") && rule_type_is_input(RULE_TARGET));
    CHECK(!rule_type_is_input(RULE_FLOAT));
}

static const RuleParam typed_params[] = {
    {"s", RULE_STRING, "x", 0, -1, NULL, ""},
    {"i", RULE_INT, "3", 0, 9, NULL, ""},
    {"f", RULE_FLOAT, "0.5", 0, 1, NULL, ""},
    {"b", RULE_BOOL, "true", 0, -1, NULL, ""},
    {"p", RULE_PATHS, "", 0, -1, NULL, ""},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};
static int typed_run(RuleCtx *ctx) { (void)ctx; return 0; }
static const Rule typed = {.name = "typed", .version = 1, .params = typed_params, .run = typed_run};

static void test_accessors_and_reports(void) {
    const char *values[] = {"hello", "-7", "0.25", "true", "a b"};
    const char *paths[] = {"/in/a", "/in/b"};
    const char *const *inputs[] = {NULL, NULL, NULL, NULL, paths};
    size_t ninputs[] = {0, 0, 0, 0, 2};
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    struct RuleCtxPriv priv = {values, inputs, ninputs, cJSON_CreateObject(), fds[1], 0};
    FILE *log = tmpfile();
    RuleCtx ctx = {.rule = &typed, .target = "t", .out_dir = "/out", .base_dir = "/", .log = log, .priv = &priv};
    CHECK(!strcmp(rule_str(&ctx, "s"), "hello"));
    CHECK(rule_int(&ctx, "i") == -7);
    CHECK(rule_float(&ctx, "f") == 0.25);
    CHECK(rule_bool(&ctx, "b") == 1);
    size_t n;
    const char *const *v = rule_inputs(&ctx, "p", &n);
    CHECK(n == 2 && !strcmp(v[1], "/in/b"));
    CHECK(!strcmp(rule_input(&ctx, "p"), "/in/a"));
    CHECK(rule_input(&ctx, "s") == NULL);
    CHECK(rule_str(&ctx, "undeclared") == NULL);   /* a bug in the rule: logged */
    rule_progress(&ctx, 1, 10);
    rule_progress(&ctx, 2, 10);                      /* throttled away */
    rule_progress(&ctx, 10, 10);                     /* the last one always goes */
    rule_metric_num(&ctx, "kl", 0.125);
    rule_metric_str(&ctx, "note", "a\nb");
    CHECK(rule_metric_json(&ctx, "per_layer", "[1,2]") == 0);
    CHECK(rule_metric_json(&ctx, "bad", "{") < 0);
    rule_metric_num(&ctx, "kl", 0.5);                /* replaces */
    rule_device(&ctx, "cuda:0\nH100");
    rule_ctx_send_metrics(&ctx);
    close(fds[1]);
    char buf[1024] = {0};
    ssize_t got = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    CHECKF(got > 0 && !strcmp(buf, "P 1 10\nP 10 10\nD cuda:0 H100\nM {\"note\":\"a\\nb\",\"per_layer\":[1,2],\"kl\":0.5}\n"),
           "got '%.300s'", buf);
    rule_log(&ctx, "step %d", 3);
    rewind(log);
    char line[256] = {0};
    size_t r = fread(line, 1, sizeof line - 1, log);
    CHECK(r > 0 && strstr(line, "undeclared parameter 'undeclared'") && strstr(line, "step 3\n"));
    fclose(log);
    cJSON_Delete(priv.metrics);
}

/* The command rule, run directly: environment, $FLAB_OUT, failure status. */
static int run_command(const char *run, const char *const *in, size_t nin, const char *out) {
    const char *values[] = {run, "", "sh"};
    const char *const *inputs[] = {NULL, in, NULL};
    size_t ninputs[] = {0, nin, 0};
    struct RuleCtxPriv priv = {values, inputs, ninputs, NULL, -1, 0};
    RuleCtx ctx = {.rule = &rule_command, .target = "cmd/t", .out_dir = out, .base_dir = "/",
                   .log = stderr, .priv = &priv};
    return rule_command.run(&ctx);
}

static void test_command_rule(void) {
    char dir[] = "/tmp/flab-rules-XXXXXX";
    REQUIRE(mkdtemp(dir));
    const char *in[] = {"/etc/hostname", dir};
    REQUIRE(run_command("echo \"$FLAB_NIN $FLAB_TARGET $FLAB_IN_2\" > \"$FLAB_OUT/env\"", in, 2, dir) == 0);
    char path[300], *text = NULL, want[300];
    snprintf(path, sizeof path, "%s/env", dir);
    REQUIRE(flab_read_file(path, &text, NULL) == 0);
    snprintf(want, sizeof want, "2 cmd/t %s\n", dir);
    CHECKF(!strcmp(text, want), "got '%s'", text);
    free(text);
    CHECK(run_command("exit 4", in, 0, dir) < 0 && strstr(flab_errmsg(), "exited with status 4"));
    CHECK(run_command("false\ntouch \"$FLAB_OUT/never\"", in, 0, dir) < 0);   /* sh -e */
    snprintf(path, sizeof path, "%s/never", dir);
    CHECK(!flab_path_exists(path));
    CHECK(run_command("kill -9 $$", in, 0, dir) < 0 && strstr(flab_errmsg(), "killed by signal 9"));
    snprintf(path, sizeof path, "rm -rf %s", dir);
    CHECK(system(path) == 0);
}

int main(void) {
    RUN(test_registry);
    RUN(test_accessors_and_reports);
    RUN(test_command_rule);
    return TEST_SUMMARY();
}
