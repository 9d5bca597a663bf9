/* tests/test_efficiency.c: parameters and FLOPs from config.json (checked
 * against the fixture checkpoint's own tensor shapes and hand arithmetic),
 * checkpoint stats, energy meters (RAPL on a fake powercap tree, including
 * counter wrap-around; the estimate; NVML absent falls back), CO2. */
#include "eval/efficiency.h"
#include "tests/scratch_testlib.h"
#include "tests/testlib.h"
#include "util/error.h"
#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TINY FIXTURE_DIR "/tiny-qwen2"
static char g_tmp[256];

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) { fputs(text, f); fclose(f); }
}

static void test_tiny_qwen2_shape_and_params(void) {
    EvalModelShape s;
    REQUIREF(eval_model_shape_load(TINY "/config.json", &s) == 0, "%s", flab_errmsg());
    CHECK(s.vocab == 2048 && s.hidden == 192 && s.intermediate == 512 && s.layers == 8);
    CHECK(s.heads == 6 && s.kv_heads == 2 && s.head_dim == 32 && !s.tie_embeddings && s.qkv_bias);
    int64_t params, bytes;
    REQUIREF(eval_checkpoint_stats(TINY, &params, &bytes) == 0, "%s", flab_errmsg());
    CHECKF(params == 3937984, "checkpoint params %lld", (long long)params);
    CHECKF(eval_param_count(&s) == params, "config implies %lld, checkpoint has %lld",
           (long long)eval_param_count(&s), (long long)params);
    struct stat st;
    REQUIRE(stat(TINY "/model.safetensors", &st) == 0);
    CHECK(bytes == (int64_t)st.st_size);
}

static void test_flops_per_token_by_hand(void) {
    EvalModelShape s;
    REQUIRE(eval_model_shape_load(TINY "/config.json", &s) == 0);
    /* per layer q 192*192 + k,v 2*192*64 + o 192*192 + mlp 3*192*512 = 393216;
     * x 8 layers + lm head 2048*192 = 3538944 */
    CHECK(eval_matmul_params(&s) == 3538944);
    CHECK(eval_flops_per_token(&s, 0) == 2.0 * 3538944);
    CHECK(eval_flops_per_token(&s, 100) == 2.0 * 3538944 + 4.0 * 8 * 192 * 100);
}

static void test_llama_style_config(void) {
    char path[300];
    snprintf(path, sizeof path, "%s/config.json", g_tmp);
    write_text(path, "{\"model_type\": \"llama\", \"vocab_size\": 100, \"hidden_size\": 16,"
                     " \"intermediate_size\": 40, \"num_hidden_layers\": 2, \"num_attention_heads\": 4,"
                     " \"num_key_value_heads\": 1, \"head_dim\": 8, \"tie_word_embeddings\": true}");
    EvalModelShape s;
    REQUIREF(eval_model_shape_load(path, &s) == 0, "%s", flab_errmsg());
    CHECK(!s.qkv_bias && s.tie_embeddings && s.head_dim == 8 && s.kv_heads == 1);
    /* per layer: q 16*32 + k,v 2*16*8 + o 32*16 + mlp 3*16*40 + norms 32 = 3232;
     * 2 layers + final norm 16 + tied embedding 1600 */
    CHECKF(eval_param_count(&s) == 2 * 3232 + 16 + 1600, "%lld", (long long)eval_param_count(&s));
    write_text(path, "{\"vocab_size\": 100, \"intermediate_size\": 40}");
    CHECK(eval_model_shape_load(path, &s) == -1);
    CHECKF(strstr(flab_errmsg(), "config.json: hidden_size: missing") != NULL, "%s", flab_errmsg());
}

static void test_checkpoint_stats_errors(void) {
    int64_t p, b;
    CHECK(eval_checkpoint_stats(g_tmp, &p, &b) == -1);
    CHECK(strstr(flab_errmsg(), "no model*.safetensors files") != NULL);
    char path[300];
    snprintf(path, sizeof path, "%s/model.safetensors", g_tmp);
    write_text(path, "\x05\x00\x00\x00\x00\x00\x00\x00{oops");
    CHECK(eval_checkpoint_stats(g_tmp, &p, &b) == -1);
    CHECKF(strstr(flab_errmsg(), "model.safetensors: bad safetensors header") != NULL, "%s", flab_errmsg());
    unlink(path);
}

static void make_zone(const char *root, const char *name, const char *energy, const char *range) {
    char dir[400], file[500];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    mkdir(dir, 0755);
    snprintf(file, sizeof file, "%s/energy_uj", dir);
    write_text(file, energy);
    snprintf(file, sizeof file, "%s/max_energy_range_uj", dir);
    write_text(file, range);
}

static void test_rapl_counts_packages_and_wraps(void) {
    char root[300];
    snprintf(root, sizeof root, "%s/powercap", g_tmp);
    mkdir(root, 0755);
    make_zone(root, "intel-rapl:0", "1000000\n", "262143328850\n");
    make_zone(root, "intel-rapl:0:0", "5\n", "262143328850\n");     /* sub-zone: ignored */
    make_zone(root, "intel-rapl:1", "262143000000\n", "262143328850\n");
    EvalEnergyConfig c;
    eval_energy_config_default(&c);
    c.powercap_root = root;
    EvalEnergyMeter m;
    eval_energy_start(&m, &c);
    CHECK(m.source == EVAL_ENERGY_RAPL && m.n_zones == 2);
    make_zone(root, "intel-rapl:0", "3500000\n", "262143328850\n");  /* +2.5 J */
    make_zone(root, "intel-rapl:0:0", "999999999\n", "262143328850\n");
    make_zone(root, "intel-rapl:1", "500000\n", "262143328850\n");   /* wrapped: +0.82885 J */
    EvalEnergySource src;
    double j = eval_energy_stop(&m, &src);
    CHECK(src == EVAL_ENERGY_RAPL);
    CHECKF(fabs(j - 3.32885) < 1e-9, "joules %.9f", j);
    char label[64];
    CHECK(!strcmp(eval_energy_label(&m, label, sizeof label), "rapl"));
}

static void test_estimate_when_nothing_readable(void) {
    EvalEnergyConfig c;
    eval_energy_config_default(&c);
    c.powercap_root = "/nonexistent/powercap";
    c.use_gpu = 1;   /* no GPU here: NVML must fail quietly */
    c.estimated_watts = 100;
    EvalEnergyMeter m;
    eval_energy_start(&m, &c);
    if (m.source == EVAL_ENERGY_NVML) { printf("# NVML works here: estimate path not exercised\n"); eval_energy_stop(&m, NULL); return; }
    CHECK(m.source == EVAL_ENERGY_ESTIMATED);
    struct timespec ts = {0, 200000000};
    nanosleep(&ts, NULL);
    EvalEnergySource src;
    double j = eval_energy_stop(&m, &src);
    CHECK(src == EVAL_ENERGY_ESTIMATED);
    CHECKF(j >= 19.9 && j < 40, "joules %.3f for 0.2 s at 100 W", j);
    char label[64];
    CHECK(!strcmp(eval_energy_label(&m, label, sizeof label), "estimated (100 W)"));
}

static void test_co2_and_rss(void) {
    CHECK(fabs(eval_co2_grams(3.6e6, EVAL_DEFAULT_GRID_G_PER_KWH) - 475.0) < 1e-9);
    CHECK(eval_co2_grams(0, 475) == 0);
    int64_t before = eval_peak_rss_bytes();
    size_t n = (size_t)64 << 20;
    volatile char *p = malloc(n);
    REQUIRE(p);
    for (size_t i = 0; i < n; i += 4096) p[i] = 1;
    int64_t after = eval_peak_rss_bytes();
    free((void *)p);
    CHECK(before > 0);
    CHECKF(after >= before + (int64_t)(n / 2), "rss %lld -> %lld", (long long)before, (long long)after);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/flab-test-efficiency-%d", (int)getpid());
    mkdir(g_tmp, 0700);
    RUN(test_tiny_qwen2_shape_and_params);
    RUN(test_flops_per_token_by_hand);
    RUN(test_llama_style_config);
    RUN(test_checkpoint_stats_errors);
    RUN(test_rapl_counts_packages_and_wraps);
    RUN(test_estimate_when_nothing_readable);
    RUN(test_co2_and_rss);
    if (scratch_remove(g_tmp)) fprintf(stderr, "could not remove %s\n", g_tmp);
    return TEST_SUMMARY();
}
