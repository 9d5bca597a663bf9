/* kernels/ref_ops.c: the reference ops (see ref_ops.h).  Every loop is the
 * formula of ops.h written out; float64 accumulators throughout. */
#include "kernels/ref_ops.h"
#include <math.h>
#include <string.h>

void ref_embedding(float *out, const float *table, int dim,
                   const int32_t *ids, int n) {
    for (int r = 0; r < n; r++)
        memcpy(out + (size_t)r * dim, table + (size_t)ids[r] * dim,
               (size_t)dim * sizeof(float));
}

void ref_matmul(float *y, const float *x, const float *W, const float *b,
                int rows, int in, int out, int acc) {
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < in; i++)
                s += (double)x[(size_t)r * in + i] * W[(size_t)o * in + i];
            float *dst = &y[(size_t)r * out + o];
            *dst = (float)(acc ? *dst + s : s);
        }
}

void ref_rmsnorm(float *out, const float *x, const float *gain, int rows,
                 int dim, float eps) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * dim;
        double ss = 0;
        for (int i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        double inv = 1.0 / sqrt(ss / dim + eps);
        for (int i = 0; i < dim; i++)
            out[(size_t)r * dim + i] = (float)(xr[i] * inv * gain[i]);
    }
}

void ref_rope(float *x, const int32_t *pos, int rows, int heads,
              int head_dim, float theta) {
    int half = head_dim / 2;
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < heads; h++) {
            float *v = x + ((size_t)r * heads + h) * head_dim;
            for (int i = 0; i < half; i++) {
                double a = pos[r] * pow(theta, -2.0 * i / head_dim);
                double x1 = v[i], x2 = v[i + half];
                v[i] = (float)(x1 * cos(a) - x2 * sin(a));
                v[i + half] = (float)(x2 * cos(a) + x1 * sin(a));
            }
        }
}

void ref_kv_store(float *ck, float *cv, const float *k, const float *v,
                  const int32_t *slot, const int32_t *pos, int rows,
                  int kv_heads, int head_dim, int max_len) {
    size_t w = (size_t)kv_heads * head_dim;
    for (int r = 0; r < rows; r++) {
        size_t at = ((size_t)slot[r] * max_len + pos[r]) * w;
        memcpy(ck + at, k + r * w, w * sizeof(float));
        memcpy(cv + at, v + r * w, w * sizeof(float));
    }
}

void ref_attention(float *out, const float *q, const float *ck,
                   const float *cv, const int32_t *slot, const int32_t *pos,
                   int rows, int heads, int kv_heads, int head_dim,
                   int max_len) {
    int group = heads / kv_heads;
    double scale = 1.0 / sqrt((double)head_dim);
    double sc[max_len];
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < heads; h++) {
            const float *qv = q + ((size_t)r * heads + h) * head_dim;
            int kvh = h / group, p = pos[r];
            size_t base = (size_t)slot[r] * max_len;
            double mx = -INFINITY, sum = 0;
            for (int t = 0; t <= p; t++) {
                const float *kv = ck + ((base + t) * kv_heads + kvh) * head_dim;
                double s = 0;
                for (int d = 0; d < head_dim; d++) s += (double)qv[d] * kv[d];
                sc[t] = s * scale;
                if (sc[t] > mx) mx = sc[t];
            }
            for (int t = 0; t <= p; t++) sum += (sc[t] = exp(sc[t] - mx));
            float *o = out + ((size_t)r * heads + h) * head_dim;
            for (int d = 0; d < head_dim; d++) {
                double acc = 0;
                for (int t = 0; t <= p; t++)
                    acc += sc[t] * cv[((base + t) * kv_heads + kvh) * head_dim + d];
                o[d] = (float)(acc / sum);
            }
        }
}

void ref_swiglu(float *out, const float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double g = gate[i];
        out[i] = (float)(g / (1.0 + exp(-g)) * up[i]);
    }
}

/* log of the softmax normaliser of one row: max + log(sum exp(x - max)). */
static double ref_logsumexp(const float *x, int cols) {
    double mx = -INFINITY, s = 0;
    for (int c = 0; c < cols; c++) if (x[c] > mx) mx = x[c];
    for (int c = 0; c < cols; c++) s += exp(x[c] - mx);
    return mx + log(s);
}

void ref_softmax(float *out, const float *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        double lse = ref_logsumexp(xr, cols);
        for (int c = 0; c < cols; c++)
            out[(size_t)r * cols + c] = (float)exp(xr[c] - lse);
    }
}

void ref_log_softmax(float *out, const float *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        double lse = ref_logsumexp(xr, cols);
        for (int c = 0; c < cols; c++)
            out[(size_t)r * cols + c] = (float)(xr[c] - lse);
    }
}

void ref_kl_rows(double *kl, const float *lp, const float *lq, int rows,
                 int cols) {
    for (int r = 0; r < rows; r++) {
        const float *p = lp + (size_t)r * cols, *q = lq + (size_t)r * cols;
        double lsp = ref_logsumexp(p, cols), lsq = ref_logsumexp(q, cols);
        double s = 0;
        for (int c = 0; c < cols; c++) {
            double a = p[c] - lsp, b = q[c] - lsq;
            s += exp(a) * (a - b);
        }
        kl[r] = s;
    }
}

void ref_cross_entropy(double *ce, const float *logits,
                       const int32_t *targets, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        const float *x = logits + (size_t)r * cols;
        ce[r] = targets[r] < 0 ? 0.0 : ref_logsumexp(x, cols) - x[targets[r]];
    }
}

void ref_argmax(int32_t *out, const float *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        int best = 0;
        for (int c = 1; c < cols; c++) if (xr[c] > xr[best]) best = c;
        out[r] = best;
    }
}
