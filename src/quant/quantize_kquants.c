/* quantize_kquants.c - quantizers of the super-block formats: Q2_K, Q3_K,
 * Q4_K, Q5_K, Q6_K, Q8_K.
 *
 * These follow GGML's reference quantizers (quantize_row_*_ref, the path
 * llama-quantize takes without an importance matrix) step for step: the
 * same scale searches (make_qkx2_quants for the "scale + min" types Q2_K,
 * Q4_K, Q5_K; make_qx_quants for Q6_K; make_q3_quants for Q3_K), the same
 * float expressions in the same order, the same round-half-to-even integer
 * conversion. Any change in evaluation order changes which candidate scale
 * wins a search and so the bytes; that is why the expressions below look
 * exactly as they do. Written from GGML's description, not copied.
 */
#include <math.h>

#include "quant/quant_impl.h"

/* Below this a group is treated as all zero (GGML's GROUP_MAX_EPS). */
#define GROUP_MAX_EPS 1e-15f

/* Round to nearest, ties to even, for |f| <= 2^22: adding 1.5 * 2^23 puts
 * the integer in the low mantissa bits (GGML's nearest_int). Read through
 * memcpy, so NaN or huge inputs give a meaningless int but never undefined
 * behaviour. */
static inline int nearest_int(float f) {
    const float v = f + 12582912.0f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static inline int clampi(int v, int lo, int hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

/* Least-squares "scale + min" fit of n values to levels 0..nmax: tries the
 * scale from the range, then nstep + 1 scales (rmin + rdelta*is + nmax) /
 * range, keeping the one with the smallest weighted error; each candidate's
 * scale and min are the weighted least-squares solution for its levels.
 * Returns the scale, stores -min in *the_min and the levels in L. The
 * running best min feeds the next candidate's range, as in GGML. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                              int use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)clampi(l, 0, nmax);
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            const int l = clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (!(D > 0))
            continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float cur_error = 0;
        for (int i = 0; i < n; ++i) {
            float diff = this_scale * Laux[i] + this_min - x[i];
            diff = use_mad ? fabsf(diff) : diff * diff;
            cur_error += weights[i] * diff;
        }
        if (cur_error < best_error) {
            memcpy(L, Laux, (size_t)n);
            best_error = cur_error;
            scale = this_scale;
            min = this_min;
        }
    }
    *the_min = -min;
    return scale;
}

/* Symmetric fit of n values to levels -nmax..nmax-1 with weights x^2
 * (GGML's make_qx_quants with rmse_type 1 and no importance weights):
 * tries 19 scales around -nmax/max and keeps the best least-squares one.
 * L gets the levels biased by +nmax. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        const int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0)
            continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            const int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) {
                const int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
                L[i] = (int8_t)(l + nmax);
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q3_K's symmetric fit to -nmax..nmax-1 (GGML's make_q3_quants with
 * do_rmse): start from -nmax/max, then up to 5 passes of moving single
 * levels while that improves the weighted (x^2) least-squares error. */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    const float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        const int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (!(slx > 0))
                continue;
            float sl2 = suml2 - w * L[i] * L[i];
            const int new_l = clampi(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (new_l == L[i])
                continue;
            slx += w * x[i] * new_l;
            sl2 += w * new_l * new_l;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)new_l;
                sumlx = slx;
                suml2 = sl2;
                ++n_changed;
            }
        }
        if (!n_changed)
            break;
    }
    for (int i = 0; i < n; ++i)
        L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Packs 256 2-bit levels: byte 32*(e/128) + e%32, shift 2*((e%128)/32). */
static void pack_2bit(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < M40_QK_K; j += 128) {
        for (int l = 0; l < 32; ++l) {
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                      (L[j + l + 96] << 6));
        }
    }
}

void m40_quant_q2_k(const float *x, uint8_t *y, int64_t nb) {
    uint8_t L[M40_QK_K], Laux[16];
    float weights[16], mins[16], scales[16];
    const float q4scale = 15.f;
    for (int64_t i = 0; i < nb; i++, x += M40_QK_K, y += M40_Q2_K_BYTES) {
        uint8_t *sc = y;
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; ++j) {
            for (int l = 0; l < 16; ++l)
                weights[l] = fabsf(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux,
                                         -0.5f, 0.1f, 15, 1);
            if (scales[j] > max_scale)
                max_scale = scales[j];
            if (mins[j] > max_min)
                max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < 16; ++j)
                sc[j] = (uint8_t)nearest_int(iscale * scales[j]);
            m40_store_f16(y + M40_Q2_K_D, max_scale / q4scale);
        } else {
            memset(sc, 0, 16);
            m40_store_f16(y + M40_Q2_K_D, 0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < 16; ++j)
                sc[j] = (uint8_t)(sc[j] | ((unsigned)nearest_int(iscale * mins[j]) << 4));
            m40_store_f16(y + M40_Q2_K_DMIN, max_min / q4scale);
        } else {
            m40_store_f16(y + M40_Q2_K_DMIN, 0.f);
        }
        /* requantize against the scales as stored */
        const float dd = m40_load_f16(y + M40_Q2_K_D);
        const float dmin = m40_load_f16(y + M40_Q2_K_DMIN);
        for (int j = 0; j < 16; ++j) {
            const float d = dd * (sc[j] & 0xF);
            if (!d)
                continue;
            const float dm = dmin * (sc[j] >> 4);
            for (int ii = 0; ii < 16; ++ii)
                L[16 * j + ii] = (uint8_t)clampi(nearest_int((x[16 * j + ii] + dm) / d), 0, 3);
        }
        pack_2bit(L, y + M40_Q2_K_QS);
    }
}

/* Inverse of q3_k_scales in dequant_kquants.c: packs 16 biased 6-bit
 * scales into 12 bytes. */
static void pack_q3_k_scale(uint8_t *s, int j, int l) {
    if (j < 8)
        s[j] = (uint8_t)(l & 0xF);
    else
        s[j - 8] = (uint8_t)(s[j - 8] | ((l & 0xF) << 4));
    s[j % 4 + 8] = (uint8_t)(s[j % 4 + 8] | ((l >> 4) << (2 * (j / 4))));
}

static int q3_k_scale(const uint8_t *s, int j) {
    const int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    return (lo | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

void m40_quant_q3_k(const float *x, uint8_t *y, int64_t nb) {
    int8_t L[M40_QK_K];
    float scales[16];
    for (int64_t i = 0; i < nb; i++, x += M40_QK_K, y += M40_Q3_K_BYTES) {
        uint8_t *s = y + M40_Q3_K_SCALES;
        float max_scale = 0, amax = 0;
        for (int j = 0; j < 16; ++j) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            const float scale = fabsf(scales[j]);
            if (scale > amax) {
                amax = scale;
                max_scale = scales[j];
            }
        }
        memset(s, 0, 12);
        if (max_scale) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; ++j) {
                /* GGML narrows to int8_t before clamping */
                const int l = (int8_t)nearest_int(iscale * scales[j]);
                pack_q3_k_scale(s, j, clampi(l, -32, 31) + 32);
            }
            m40_store_f16(y + M40_Q3_K_D, 1 / iscale);
        } else {
            m40_store_f16(y + M40_Q3_K_D, 0.f);
        }
        const float dd = m40_load_f16(y + M40_Q3_K_D);
        for (int j = 0; j < 16; ++j) {
            const float d = dd * q3_k_scale(s, j);
            if (!d)
                continue;
            for (int ii = 0; ii < 16; ++ii)
                L[16 * j + ii] = (int8_t)(clampi(nearest_int(x[16 * j + ii] / d), -4, 3) + 4);
        }
        /* high bit of element e -> hmask byte e%32, bit e/32 */
        uint8_t *hmask = y;
        uint8_t L2[M40_QK_K];
        memset(hmask, 0, 32);
        for (int e = 0; e < M40_QK_K; ++e) {
            int l = L[e];
            if (l > 3) {
                hmask[e % 32] = (uint8_t)(hmask[e % 32] | (1u << (e / 32)));
                l -= 4;
            }
            L2[e] = (uint8_t)l;
        }
        pack_2bit(L2, y + M40_Q3_K_QS);
    }
}

/* Packs 8 6-bit scales and mins into Q4_K/Q5_K's 12 bytes (inverse of
 * m40_k4_scale_min). */
static void pack_k4_scales(uint8_t *s, const uint8_t ls[8], const uint8_t lm[8]) {
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            s[j - 4] = (uint8_t)(s[j - 4] | ((ls[j] >> 4) << 6));
            s[j] = (uint8_t)(s[j] | ((lm[j] >> 4) << 6));
        }
    }
}

/* The shared part of Q4_K and Q5_K: fit 8 sub-blocks of 32 to 0..nmax,
 * store d, dmin and the packed 6-bit scales at y, and leave the final
 * levels (requantized against the stored scales) in L. */
static void quant_k4_scales(const float *x, uint8_t *y, int nmax, float rmin, float rdelta,
                            int nstep, uint8_t L[M40_QK_K]) {
    uint8_t Laux[32], ls[8], lm[8];
    float weights[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l)
            sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; ++l)
            weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                     rmin, rdelta, nstep, 0);
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; ++j) {
        /* GGML narrows to uint8_t, then caps at 63 */
        const uint8_t a = (uint8_t)nearest_int(inv_scale * scales[j]);
        const uint8_t b = (uint8_t)nearest_int(inv_min * mins[j]);
        ls[j] = a < 63 ? a : 63;
        lm[j] = b < 63 ? b : 63;
    }
    uint8_t *s = y + M40_Q4_K_SCALES;
    pack_k4_scales(s, ls, lm);
    m40_store_f16(y, max_scale / 63.f);
    m40_store_f16(y + M40_Q4_K_DMIN, max_min / 63.f);
    const float dd = m40_load_f16(y);
    const float dmin = m40_load_f16(y + M40_Q4_K_DMIN);
    for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        m40_k4_scale_min(j, s, &sc, &m);
        const float d = dd * sc;
        if (!d)
            continue;
        const float dm = dmin * m;
        for (int ii = 0; ii < 32; ++ii)
            L[32 * j + ii] = (uint8_t)clampi(nearest_int((x[32 * j + ii] + dm) / d), 0, nmax);
    }
}

void m40_quant_q4_k(const float *x, uint8_t *y, int64_t nb) {
    uint8_t L[M40_QK_K];
    for (int64_t i = 0; i < nb; i++, x += M40_QK_K, y += M40_Q4_K_BYTES) {
        quant_k4_scales(x, y, 15, -1.f, 0.1f, 20, L);
        uint8_t *q = y + M40_Q4_K_QS;
        for (int j = 0; j < M40_QK_K; j += 64, q += 32) {
            for (int l = 0; l < 32; ++l)
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
        }
    }
}

void m40_quant_q5_k(const float *x, uint8_t *y, int64_t nb) {
    uint8_t L[M40_QK_K];
    for (int64_t i = 0; i < nb; i++, x += M40_QK_K, y += M40_Q5_K_BYTES) {
        quant_k4_scales(x, y, 31, -0.5f, 0.1f, 15, L);
        uint8_t *qh = y + M40_Q5_K_QH;
        uint8_t *ql = y + M40_Q5_K_QS;
        memset(qh, 0, 32);
        for (int c = 0; c < 4; ++c, ql += 32) {
            const uint8_t m1 = (uint8_t)(1u << (2 * c)), m2 = (uint8_t)(2u << (2 * c));
            for (int j = 0; j < 32; ++j) {
                int l1 = L[64 * c + j], l2 = L[64 * c + j + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
        }
    }
}

/* Packs 256 6-bit levels (0..63) into Q6_K's ql/qh (see m40_dequant_q6_k). */
static void pack_q6_k(const int8_t *L, uint8_t *ql, uint8_t *qh) {
    for (int j = 0; j < M40_QK_K; j += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; ++l) {
            const int a = L[j + l], b = L[j + l + 32], c = L[j + l + 64], d = L[j + l + 96];
            ql[l] = (uint8_t)((a & 0xF) | ((c & 0xF) << 4));
            ql[l + 32] = (uint8_t)((b & 0xF) | ((d & 0xF) << 4));
            qh[l] = (uint8_t)((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((d >> 4) << 6));
        }
    }
}

void m40_quant_q6_k(const float *x, uint8_t *y, int64_t nb) {
    int8_t L[M40_QK_K];
    float scales[16];
    for (int64_t i = 0; i < nb; i++, x += M40_QK_K, y += M40_Q6_K_BYTES) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < 16; ++ib) {
            scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            const float abs_scale = fabsf(scales[ib]);
            if (abs_scale > max_abs_scale) {
                max_abs_scale = abs_scale;
                max_scale = scales[ib];
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(y, 0, M40_Q6_K_BYTES);
            continue;
        }
        int8_t *sc = (int8_t *)(y + M40_Q6_K_SCALES);
        const float iscale = -128.f / max_scale;
        m40_store_f16(y + M40_Q6_K_D, 1 / iscale);
        for (int ib = 0; ib < 16; ++ib) {
            const int l = nearest_int(iscale * scales[ib]);
            sc[ib] = (int8_t)(l < 127 ? l : 127);
        }
        const float dd = m40_load_f16(y + M40_Q6_K_D);
        for (int j = 0; j < 16; ++j) {
            const float d = dd * sc[j];
            if (!d)
                continue;
            for (int ii = 0; ii < 16; ++ii)
                L[16 * j + ii] = (int8_t)(clampi(nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
        }
        pack_q6_k(L, y, y + M40_Q6_K_QH);
    }
}

void m40_quant_q8_k(const float *x, uint8_t *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += M40_QK_K, y += M40_Q8_K_BYTES) {
        float max = 0, amax = 0;
        for (int j = 0; j < M40_QK_K; ++j) {
            const float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (!amax) {
            /* GGML leaves bsums unwritten here; zero is their true value */
            memset(y, 0, M40_Q8_K_BYTES);
            continue;
        }
        const float iscale = -127.f / max;
        int8_t *qs = (int8_t *)(y + M40_Q8_K_QS);
        for (int j = 0; j < M40_QK_K; ++j) {
            const int v = nearest_int(iscale * x[j]);
            qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < 16; ++j) {
            int sum = 0;
            for (int ii = 0; ii < 16; ++ii)
                sum += qs[16 * j + ii];
            const int16_t s16 = (int16_t)sum;
            memcpy(y + M40_Q8_K_BSUMS + 2 * j, &s16, 2);
        }
        const float d = 1 / iscale;
        memcpy(y, &d, 4);
    }
}
