/* quant_decode.cuh - GGML weight blocks decoded to FP32, on the device.
 *
 * Every weight type is read in groups of 32 consecutive elements of a row
 * ("sub-blocks"): decode32_<type>(row, g, v) writes elements 32g .. 32g+31
 * of the row that starts at `row` into v[32]. Layouts are GGML's (see
 * docs/ggml-formats.md and src/quant/ for the CPU twins); only byte loads
 * and FP16 -> FP32 conversions are used, so any alignment is fine and the
 * code is legal on sm_52 (no half arithmetic).
 *
 * Block sizes: plain types and Q4_0..Q8_0 have 32-element blocks (one
 * sub-block each); K-quants have 256-element super-blocks of 8 sub-blocks.
 */
#ifndef M40_KERNELS_QUANT_DECODE_CUH
#define M40_KERNELS_QUANT_DECODE_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "iq_grids.cuh"

static __device__ __forceinline__ float m40_h2f(const uint8_t *p) {
    unsigned short bits = (unsigned short)(p[0] | (p[1] << 8));
    return __half2float(__ushort_as_half(bits));
}

/* The low and high FP16 halves of a 32-bit word as FP32. */
static __device__ __forceinline__ float m40_h_lo(uint32_t u) {
    return __half2float(__ushort_as_half((unsigned short)(u & 0xFFFF)));
}
static __device__ __forceinline__ float m40_h_hi(uint32_t u) {
    return __half2float(__ushort_as_half((unsigned short)(u >> 16)));
}

static __device__ __forceinline__ uint32_t m40_load_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* ---- plain types: 32 elements of the row ---- */

static __device__ __forceinline__ void decode32_f32(const uint8_t *row, int64_t g, float *v) {
    const float *p = (const float *)(row) + g * 32; /* F32 rows are 4-byte aligned */
    for (int i = 0; i < 32; i++)
        v[i] = p[i];
}

static __device__ __forceinline__ void decode32_f16(const uint8_t *row, int64_t g, float *v) {
    const uint8_t *p = row + g * 64;
    for (int i = 0; i < 32; i++)
        v[i] = m40_h2f(p + 2 * i);
}

static __device__ __forceinline__ void decode32_bf16(const uint8_t *row, int64_t g, float *v) {
    const uint8_t *p = row + g * 64;
    for (int i = 0; i < 32; i++)
        v[i] = __uint_as_float(((uint32_t)p[2 * i] | ((uint32_t)p[2 * i + 1] << 8)) << 16);
}

/* ---- legacy quants: one 32-element block per sub-block ---- */

/* Q4_0 (18 B): d f16, qs[16]; x[j] = (lo(qs[j]) - 8) d, x[j+16] = (hi(qs[j]) - 8) d */
static __device__ __forceinline__ void decode32_q4_0(const uint8_t *row, int64_t g, float *v) {
    const uint8_t *b = row + g * 18;
    float d = m40_h2f(b);
    for (int j = 0; j < 16; j++) {
        int q = b[2 + j];
        v[j] = (float)((q & 0xF) - 8) * d;
        v[j + 16] = (float)((q >> 4) - 8) * d;
    }
}

/* Q4_1 (20 B): d, m f16, qs[16]; x = q d + m */
static __device__ __forceinline__ void decode32_q4_1(const uint8_t *row, int64_t g, float *v) {
    const uint8_t *b = row + g * 20;
    float d = m40_h2f(b), m = m40_h2f(b + 2);
    for (int j = 0; j < 16; j++) {
        int q = b[4 + j];
        v[j] = (float)(q & 0xF) * d + m;
        v[j + 16] = (float)(q >> 4) * d + m;
    }
}

/* Q5_0 (22 B): d f16, qh u32 (bit j = 5th bit of x[j]), qs[16]; x = (q5 - 16) d */
static __device__ __forceinline__ void decode32_q5_0(const uint8_t *row, int64_t g, float *v) {
    const uint8_t *b = row + g * 22;
    float d = m40_h2f(b);
    uint32_t qh = m40_load_u32(b + 2);
    for (int j = 0; j < 16; j++) {
        int q = b[6 + j];
        int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
        v[j] = (float)(((q & 0xF) | h0) - 16) * d;
        v[j + 16] = (float)(((q >> 4) | h1) - 16) * d;
    }
}

/* Q5_1 (24 B): d, m f16, qh u32, qs[16]; x = q5 d + m */
static __device__ __forceinline__ void decode32_q5_1(const uint8_t *row, int64_t g, float *v) {
    const uint8_t *b = row + g * 24;
    float d = m40_h2f(b), m = m40_h2f(b + 2);
    uint32_t qh = m40_load_u32(b + 4);
    for (int j = 0; j < 16; j++) {
        int q = b[8 + j];
        int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
        v[j] = (float)((q & 0xF) | h0) * d + m;
        v[j + 16] = (float)((q >> 4) | h1) * d + m;
    }
}

/* Q8_0 (34 B): d f16, qs[32] int8; x = q d */
static __device__ __forceinline__ void decode32_q8_0(const uint8_t *row, int64_t g, float *v) {
    const uint8_t *b = row + g * 34;
    float d = m40_h2f(b);
    for (int j = 0; j < 32; j++)
        v[j] = (float)(int8_t)b[2 + j] * d;
}

/* ---- K-quants: 256-element super-blocks, sub-block s = g % 8 ---- */

/* The 6-bit scale and min of sub-block j of Q4_K/Q5_K's 12 packed bytes. */
static __device__ __forceinline__ void m40_scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Q4_K (144 B): d, dmin f16, scales[12], qs[128]. Sub-blocks 2k and 2k+1
 * share qs[32k .. 32k+31]: low nibbles for 2k, high for 2k+1.
 * x = d*sc*q - dmin*m */
static __device__ __forceinline__ void decode32_q4_k(const uint8_t *row, int64_t g, float *v) {
    const uint8_t *b = row + (g >> 3) * 144;
    int s = (int)(g & 7), sc, mn;
    m40_scale_min_k4(s, b + 4, &sc, &mn);
    float d = m40_h2f(b) * (float)sc, m = m40_h2f(b + 2) * (float)mn;
    const uint8_t *qs = b + 16 + (s >> 1) * 32;
    int shift = (s & 1) * 4;
    for (int l = 0; l < 32; l++)
        v[l] = d * (float)((qs[l] >> shift) & 0xF) - m;
}

/* Q5_K (176 B): d, dmin, scales[12], qh[32], qs[128]; as Q4_K plus a 5th
 * bit: bit s of qh[l] for element l of sub-block s. */
static __device__ __forceinline__ void decode32_q5_k(const uint8_t *row, int64_t g, float *v) {
    const uint8_t *b = row + (g >> 3) * 176;
    int s = (int)(g & 7), sc, mn;
    m40_scale_min_k4(s, b + 4, &sc, &mn);
    float d = m40_h2f(b) * (float)sc, m = m40_h2f(b + 2) * (float)mn;
    const uint8_t *qh = b + 16, *qs = b + 48 + (s >> 1) * 32;
    int shift = (s & 1) * 4;
    for (int l = 0; l < 32; l++) {
        int q = ((qs[l] >> shift) & 0xF) | (((qh[l] >> s) & 1) << 4);
        v[l] = d * (float)q - m;
    }
}

/* Q6_K (210 B): ql[128], qh[64], scales[16] int8, d f16. Each half of 128
 * elements uses ql[64], qh[32], scales[8]; within a half, sub-block
 * t (0..3) takes low (t even) or high (t odd) nibbles of ql[32*(t&1) ..],
 * and bits 2t..2t+1 of qh. Each 16 elements have their own scale.
 * x = d * scale * (q6 - 32) */
static __device__ __forceinline__ void decode32_q6_k(const uint8_t *row, int64_t g, float *v) {
    const uint8_t *b = row + (g >> 3) * 210;
    int s = (int)(g & 7), half = s >> 2, t = s & 3;
    const uint8_t *ql = b + half * 64 + (t & 1) * 32;
    const uint8_t *qh = b + 128 + half * 32;
    const int8_t *sc = (const int8_t *)(b + 192) + half * 8 + t * 2;
    float d = m40_h2f(b + 208);
    int shift = (t >> 1) * 4;
    for (int l = 0; l < 32; l++) {
        int q = ((ql[l] >> shift) & 0xF) | (((qh[l] >> (2 * t)) & 3) << 4);
        v[l] = d * (float)sc[l >> 4] * (float)(q - 32);
    }
}

/* Q2_K (84 B): scales[16] (4-bit scale low, 4-bit min high, one per 16
 * elements), qs[64], d, dmin f16. Element e of the block has 2 bits in
 * qs[32 (e / 128) + e % 32] at shift 2 ((e % 128) / 32). Sub-block s's 32
 * elements are two scale groups. x = d*sc * q - dmin*m (GGML's order). */
static __device__ __forceinline__ void decode32_q2_k(const uint8_t *row, int64_t g, float *v) {
    const uint8_t *b = row + (g >> 3) * 84;
    int s = (int)(g & 7);
    float d = m40_h2f(b + 80), dmin = m40_h2f(b + 82);
    const uint8_t *qs = b + 16 + 32 * (s >> 2);
    int shift = 2 * (s & 3);
    for (int h = 0; h < 2; h++) {
        int sc = b[2 * s + h];
        float dl = d * (float)(sc & 0xF), ml = dmin * (float)(sc >> 4);
        for (int l = 16 * h; l < 16 * h + 16; l++)
            v[l] = dl * (float)((qs[l] >> shift) & 3) - ml;
    }
}

/* Q3_K (110 B): hmask[32], qs[64], scales[12], d f16. Element e: 2 low bits
 * as Q2_K's, a high bit in hmask[e % 32] bit e / 32 (clear: subtract 4);
 * 16 signed 6-bit scales (+32 bias): scale j's low 4 bits are nibble j / 8
 * of scales[j % 8], its top 2 bits are bits 2 (j / 4) of scales[8 + j % 4].
 * x = d*sc * q. */
static __device__ __forceinline__ void decode32_q3_k(const uint8_t *row, int64_t g, float *v) {
    const uint8_t *b = row + (g >> 3) * 110;
    int s = (int)(g & 7);
    float d = m40_h2f(b + 108);
    const uint8_t *qs = b + 32 + 32 * (s >> 2), *sc = b + 96;
    int shift = 2 * (s & 3), bit = 1 << s;
    for (int h = 0; h < 2; h++) {
        int j = 2 * s + h;
        int lo = j < 8 ? (sc[j] & 0xF) : (sc[j - 8] >> 4);
        int hi = (sc[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
        float dl = d * (float)((lo | (hi << 4)) - 32);
        for (int l = 16 * h; l < 16 * h + 16; l++) {
            int q = ((qs[l] >> shift) & 3) - ((b[l] & bit) ? 0 : 4);
            v[l] = dl * (float)q;
        }
    }
}

/* IQ4_NL and IQ4_XS: 4-bit indices into the format's 16 levels (GGML's
 * kvalues_iq4nl), laid out as Q4_0's nibbles. */
static __constant__ int8_t m40_iq4_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                 1,    13,   25,  38,  53,  69,  89,  113};

static __device__ __forceinline__ void m40_iq4_32(const uint8_t *qs, float d, float *v) {
    for (int j = 0; j < 16; j++) {
        v[j] = d * (float)m40_iq4_levels[qs[j] & 0xF];
        v[j + 16] = d * (float)m40_iq4_levels[qs[j] >> 4];
    }
}

/* IQ4_NL (18 B): d f16, qs[16]. */
static __device__ __forceinline__ void decode32_iq4_nl(const uint8_t *row, int64_t g, float *v) {
    const uint8_t *b = row + g * 18;
    m40_iq4_32(b + 2, m40_h2f(b), v);
}

/* IQ4_XS (136 B): d f16, scales_h u16, scales_l[4], qs[128]; sub-block s
 * has a 6-bit scale (+32 bias): low 4 bits nibble s % 2 of scales_l[s / 2],
 * high 2 bits bits 2s of scales_h. x = (d * (ls - 32)) * level. */
static __device__ __forceinline__ void decode32_iq4_xs(const uint8_t *row, int64_t g, float *v) {
    const uint8_t *b = row + (g >> 3) * 136;
    int s = (int)(g & 7);
    unsigned sh = (unsigned)b[2] | ((unsigned)b[3] << 8);
    int ls = ((b[4 + (s >> 1)] >> (4 * (s & 1))) & 0xF) | (int)(((sh >> (2 * s)) & 3) << 4);
    m40_iq4_32(b + 8 + 16 * s, m40_h2f(b) * (float)(ls - 32), v);
}

/* ---- the grid formats: IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S ----
 * A 256-element super-block stores, per 8 (IQ2) or 4 (IQ3) elements, the
 * index of a row of a fixed grid of small magnitudes (iq_grids.cuh: a row
 * is a word of 2- or 3-bit level codes), per 8 elements their signs, and
 * per 16 or 32 elements a 4-bit scale under the FP16 d; the CPU's twins
 * are src/quant/dequant_iq.c, whose order of operations these keep: the
 * group's scale db, then db times the magnitude, then the sign. Sub-block
 * s = g % 8 of super-block g / 8. */

/* Eight signs (bit j: element j negative) of a 7-bit sign index: the index
 * and, as bit 7, the parity of its bits. */
static __device__ __forceinline__ unsigned m40_iq_signs(unsigned idx) {
    return (idx & 0x7F) | ((unsigned)(__popc(idx & 0x7F) & 1) << 7);
}

/* n elements of a grid row (codes of `bits` bits, magnitudes lv) times db,
 * negated where bit j of signs is set. */
static __device__ __forceinline__ void m40_iq_row(unsigned row, int n, int bits, const uint8_t *lv,
                                                  float db, unsigned signs, float *v) {
    for (int j = 0; j < n; j++) {
        float x = db * (float)__ldg(lv + ((row >> (bits * j)) & ((1u << bits) - 1)));
        v[j] = (signs >> j) & 1 ? -x : x;
    }
}

/* IQ2_XS and IQ2_S: the 4-bit scale of 8-element entry e, one per two
 * entries, low nibble first. */
static __device__ __forceinline__ float m40_iq2_entry_scale(const uint8_t *scales, float d, int e) {
    unsigned s = (scales[e / 4] >> (4 * ((e / 2) & 1))) & 0x0F;
    return d * (0.5f + (float)s) * 0.25f;
}

/* IQ2_XXS (66 B): d, then per 32 elements 4 grid-row indices (bytes) and a
 * u32 of four 7-bit sign indices and a 4-bit scale (top bits). */
static __device__ __forceinline__ void decode32_iq2_xxs(const uint8_t *row, int64_t g, float *v) {
    const uint8_t *b = row + (g >> 3) * 66;
    const uint8_t *idx = b + 2 + 8 * (g & 7);
    const uint32_t aux = m40_load_u32(idx + 4);
    const float db = m40_h2f(b) * (0.5f + (float)(aux >> 28)) * 0.25f;
    for (int l = 0; l < 4; l++)
        m40_iq_row(__ldg(m40_d_iq2xxs_grid + idx[l]), 8, 2, m40_d_iq2_levels, db,
                   m40_iq_signs((aux >> (7 * l)) & 0x7F), v + 8 * l);
}

/* IQ2_XS (74 B): d, qs[32] (u16: 9-bit grid row, 7-bit sign index),
 * scales[8]. */
static __device__ __forceinline__ void decode32_iq2_xs(const uint8_t *row, int64_t g, float *v) {
    const uint8_t *b = row + (g >> 3) * 74;
    const float d = m40_h2f(b);
    for (int l = 0; l < 4; l++) {
        const int e = 4 * (int)(g & 7) + l;
        const unsigned q = (unsigned)b[2 + 2 * e] | ((unsigned)b[3 + 2 * e] << 8);
        m40_iq_row(__ldg(m40_d_iq2xs_grid + (q & 511)), 8, 2, m40_d_iq2_levels,
                   m40_iq2_entry_scale(b + 66, d, e), m40_iq_signs(q >> 9), v + 8 * l);
    }
}

/* IQ2_S (82 B): d, qs[32] (grid row, low 8 bits), signs[32], qh[8] (2 high
 * bits per entry), scales[8]. */
static __device__ __forceinline__ void decode32_iq2_s(const uint8_t *row, int64_t g, float *v) {
    const uint8_t *b = row + (g >> 3) * 82;
    const float d = m40_h2f(b);
    for (int l = 0; l < 4; l++) {
        const int e = 4 * (int)(g & 7) + l;
        const unsigned hi = (b[66 + e / 4] >> (2 * (e % 4))) & 3;
        m40_iq_row(__ldg(m40_d_iq2s_grid + (b[2 + e] | (hi << 8))), 8, 2, m40_d_iq2_levels,
                   m40_iq2_entry_scale(b + 74, d, e), b[34 + e], v + 8 * l);
    }
}

/* IQ3_XXS (98 B): d, qs[64] (grid rows of 4), then per 32 elements a u32
 * as IQ2_XXS's (scale d (0.5 + s) 0.5). */
static __device__ __forceinline__ void decode32_iq3_xxs(const uint8_t *row, int64_t g, float *v) {
    const uint8_t *b = row + (g >> 3) * 98;
    const int s = (int)(g & 7);
    const uint32_t aux = m40_load_u32(b + 66 + 4 * s);
    const float db = m40_h2f(b) * (0.5f + (float)(aux >> 28)) * 0.5f;
    for (int l = 0; l < 4; l++) {
        const uint8_t *qs = b + 2 + 8 * s + 2 * l;
        const unsigned signs = m40_iq_signs((aux >> (7 * l)) & 0x7F);
        m40_iq_row(__ldg(m40_d_iq3xxs_grid + qs[0]), 4, 3, m40_d_iq3xxs_levels, db, signs,
                   v + 8 * l);
        m40_iq_row(__ldg(m40_d_iq3xxs_grid + qs[1]), 4, 3, m40_d_iq3xxs_levels, db, signs >> 4,
                   v + 8 * l + 4);
    }
}

/* IQ3_S (110 B): d, qs[64] (grid row, low 8 bits), qh[8] (1 high bit per
 * row), signs[32] (4 per row), scales[4] (4 bits per 32 elements: d (1 +
 * 2 s)). */
static __device__ __forceinline__ void decode32_iq3_s(const uint8_t *row, int64_t g, float *v) {
    const uint8_t *b = row + (g >> 3) * 110;
    const int s = (int)(g & 7);
    const unsigned sc = (b[106 + s / 2] >> (4 * (s % 2))) & 0x0F;
    const float db = m40_h2f(b) * (float)(1 + 2 * sc);
    for (int r = 0; r < 8; r++) {
        const int e = 8 * s + r; /* grid row e: elements 4e .. 4e + 3 */
        const unsigned hi = (b[66 + e / 8] >> (e % 8)) & 1;
        const unsigned signs = b[74 + e / 2] >> (4 * (e % 2));
        m40_iq_row(__ldg(m40_d_iq3s_grid + (b[2 + e] | (hi << 8))), 4, 3, m40_d_iq3s_levels, db,
                   signs, v + 4 * r);
    }
}

/* ---- repacked Q4_0 / Q8_0 (repack.cu) ----------------------------------
 * quants [R/8][NB][QW][8] words, then scales [R/8][NB][8] f16: rows are
 * interleaved by groups of 8, so these take the matrix's row count (it
 * locates the scales), its blocks per row and a row and block index
 * instead of a row pointer. */

/* The index of block b of row r in the interleaved order (times QW * 8 for
 * its first quant word, times 8 for its scale; + r % 8 for the row's own). */
static __device__ __forceinline__ unsigned long long m40_rblock(unsigned nb, unsigned r,
                                                                unsigned b) {
    return (unsigned long long)(r / 8) * nb + b;
}

/* Small integers to float without I2F (a quarter-rate conversion on every
 * GPU since Maxwell): put the integer in the mantissa of 2^23 (0x4B000000)
 * and subtract 2^23 plus the offset, with one exact FADD. m40_byte_to_f
 * takes byte j (0..3) of `bytes` that way with one PRMT (selector: byte j,
 * two zero bytes of the second operand, then its 0x4B) instead of a
 * bit-field extract and an OR: 3 instructions per weight with the FADD and
 * the FFMA of the dot product, not 4. */
static __device__ __forceinline__ float m40_byte_to_f(uint32_t bytes, int j) {
    return __uint_as_float(__byte_perm(bytes, 0x4B000000u, 0x7440u | (unsigned)j));
}

/* The same under the exponent of 2^19 (0x49000000, ulp 1/16): byte j is
 * 2^19 + byte / 16, so a high nibble in place (16 n) becomes 2^19 + n
 * without a shift. */
static __device__ __forceinline__ float m40_byte_to_f19(uint32_t bytes, int j) {
    return __uint_as_float(__byte_perm(bytes, 0x49000000u, 0x7440u | (unsigned)j));
}

/* Byte j of `bytes` as 2^15 + byte (m40_byte_at_2p15: the byte in bits
 * 8..15 of 2^15, whose ulp is 2^-8) or as 2^11 + byte / 16
 * (m40_byte_at_2p11: ulp 2^-12, so a high nibble in place, 16 n, reads
 * 2^11 + n), with one PRMT. Then one FMA with the block's scale d and the
 * constant c = -(2^15 + offset) d (or -(2^11 + offset) d) gives
 * (byte - offset) d with no rounding at all: c is exact (2^15 + 8, 2^15 +
 * 128 and 2^11 + 8 have at most 13 significant bits, an FP16 d 11), the
 * FMA rounds only its exact sum, and that sum, a 4- or 8-bit integer times
 * d, fits in a float. So a weight is dequantized, scale included, for the
 * cost of the FADD that m40_byte_to_f needs, and a dot product of the
 * dequantized weights needs no scale FMA per input. */
static __device__ __forceinline__ float m40_byte_at_2p15(uint32_t bytes, int j) {
    return __uint_as_float(__byte_perm(bytes, 0x47000000u, 0x7404u | ((unsigned)j << 4)));
}
static __device__ __forceinline__ float m40_byte_at_2p11(uint32_t bytes, int j) {
    return __uint_as_float(__byte_perm(bytes, 0x45000000u, 0x7404u | ((unsigned)j << 4)));
}

/* Four bits b (0..15) spread to bit 0 of each byte: the multiply puts
 * copies of b at shifts 0, 7, 14 and 21, and the mask keeps bit i of the
 * copy shifted by 7i (no two copies overlap, so nothing carries). */
static __device__ __forceinline__ uint32_t m40_spread4(uint32_t b) {
    return (b * 0x00204081u) & 0x01010101u;
}

/* The 8 values of quant word k of a legacy 32-element block (qs[4k..4k+3]):
 * the bytes' low nibbles are values 4k..4k+3, their high nibbles values
 * 16+4k..; bits 4k.. and 16+4k.. of qh are their fifth bits (Q5_0, Q5_1;
 * 0 for the 4-bit types). Each value is the quant minus magic - 2^23. */
static __device__ __forceinline__ void m40_put_nibbles(uint32_t w, uint32_t qh, int k, float magic,
                                                       float *v) {
    uint32_t lo = (w & 0x0F0F0F0Fu) | (m40_spread4((qh >> (4 * k)) & 0xFu) << 4);
    uint32_t hi = ((w >> 4) & 0x0F0F0F0Fu) | (m40_spread4((qh >> (16 + 4 * k)) & 0xFu) << 4);
#pragma unroll
    for (int j = 0; j < 4; j++) {
        v[4 * k + j] = m40_byte_to_f(lo, j) - magic;
        v[16 + 4 * k + j] = m40_byte_to_f(hi, j) - magic;
    }
}

/* The 32 unscaled values of block b of row r of a repacked Q4_0 matrix
 * (rows x nb blocks at w): nibble - 8, low nibbles first; returns the
 * scale. */
static __device__ __forceinline__ float
m40_q4_0r_block(const uint8_t *w, unsigned rows, unsigned nb, unsigned r, unsigned b, float *v) {
    const unsigned long long gb = m40_rblock(nb, r, b);
    const uint32_t *q = (const uint32_t *)w + gb * 32 + r % 8;
#pragma unroll
    for (int k = 0; k < 4; k++)
        m40_put_nibbles(__ldg(q + 8 * k), 0, k, 8388616.0f, v); /* nibble - 8 */
    const unsigned short *s = (const unsigned short *)(w + (unsigned long long)rows * nb * 16);
    return __half2float(__ushort_as_half(__ldg(s + gb * 8 + r % 8)));
}

/* The same for repacked Q8_0: int8 values, 8 words a block. */
static __device__ __forceinline__ float
m40_q8_0r_block(const uint8_t *w, unsigned rows, unsigned nb, unsigned r, unsigned b, float *v) {
    const unsigned long long gb = m40_rblock(nb, r, b);
    const uint32_t *q = (const uint32_t *)w + gb * 64 + r % 8;
#pragma unroll
    for (int k = 0; k < 8; k++) {
        /* flipping the sign bit maps int8 -128..127 to 0..255 = value + 128 */
        uint32_t u = __ldg(q + 8 * k) ^ 0x80808080u;
#pragma unroll
        for (int j = 0; j < 4; j++)
            v[4 * k + j] = m40_byte_to_f(u, j) - 8388736.0f;
    }
    const unsigned short *s = (const unsigned short *)(w + (unsigned long long)rows * nb * 32);
    return __half2float(__ushort_as_half(__ldg(s + gb * 8 + r % 8)));
}

/* Q5_K sub-block g (row 16-byte aligned; 176-byte blocks keep qh and qs
 * 16-byte aligned): Q4_K's nibbles (low for an even sub-block, high for an
 * odd one), with bit s of qh[l] as each value's fifth
 * bit, moved into place four values at a time. */
static __device__ __forceinline__ void m40_q5_k_group(const uint8_t *row, int g, float *v,
                                                      float *dsc, float *dmn) {
    const uint8_t *b = row + (g >> 3) * 176;
    int s = g & 7, sc, mn;
    m40_scale_min_k4(s, b + 4, &sc, &mn);
    *dsc = m40_h2f(b) * (float)sc;
    *dmn = m40_h2f(b + 2) * (float)mn;
    const uint4 *qh4 = (const uint4 *)(b + 16), *qs4 = (const uint4 *)(b + 48 + (s >> 1) * 32);
    uint4 h0 = __ldg(qh4), h1 = __ldg(qh4 + 1), p0 = __ldg(qs4), p1 = __ldg(qs4 + 1);
    uint32_t hw[8] = {h0.x, h0.y, h0.z, h0.w, h1.x, h1.y, h1.z, h1.w};
    uint32_t qw[8] = {p0.x, p0.y, p0.z, p0.w, p1.x, p1.y, p1.z, p1.w};
    int shift = (s & 1) * 4;
#pragma unroll
    for (int k = 0; k < 8; k++) {
        uint32_t q = ((qw[k] >> shift) & 0x0F0F0F0Fu) | (((hw[k] >> s) & 0x01010101u) << 4);
#pragma unroll
        for (int j = 0; j < 4; j++)
            v[4 * k + j] = m40_byte_to_f(q, j) - 8388608.0f;
    }
}

/* Four bytes p[0..3] from two 2-byte loads (p 2-byte aligned). */
static __device__ __forceinline__ uint32_t m40_ld4_u16(const uint8_t *p) {
    const unsigned short *h = (const unsigned short *)p;
    return (uint32_t)__ldg(h) | ((uint32_t)__ldg(h + 1) << 16);
}

/* The legacy 32-element blocks with a minimum or a fifth bit, four values
 * per word under the float exponent by PRMT: v gets the unscaled q (Q5_0:
 * q - 16), and the block's d and -m (so that x . w = d (x . q) - (-m)
 * sum(x), as the K-quant kernels apply it). Q4_1 and Q5_1 blocks (20, 24
 * bytes) are 4-byte aligned and read with 4-byte loads; Q5_0's 22-byte
 * blocks only 2-byte aligned, read with 2-byte loads. */
static __device__ __forceinline__ void m40_q4_1_group(const uint8_t *row, int g, float *v, float *d,
                                                      float *neg_m) {
    const uint32_t *b = (const uint32_t *)(row + g * 20);
    uint32_t dm = __ldg(b);
    *d = m40_h_lo(dm);
    *neg_m = -m40_h_hi(dm);
#pragma unroll
    for (int k = 0; k < 4; k++)
        m40_put_nibbles(__ldg(b + 1 + k), 0, k, 8388608.0f, v);
}

static __device__ __forceinline__ void m40_q5_1_group(const uint8_t *row, int g, float *v, float *d,
                                                      float *neg_m) {
    const uint32_t *b = (const uint32_t *)(row + g * 24);
    uint32_t dm = __ldg(b), qh = __ldg(b + 1);
    *d = m40_h_lo(dm);
    *neg_m = -m40_h_hi(dm);
#pragma unroll
    for (int k = 0; k < 4; k++)
        m40_put_nibbles(__ldg(b + 2 + k), qh, k, 8388608.0f, v);
}

static __device__ __forceinline__ void m40_q5_0_group(const uint8_t *row, int g, float *v, float *d,
                                                      float *neg_m) {
    const uint8_t *b = row + g * 22;
    *d = __half2float(__ushort_as_half(__ldg((const unsigned short *)b)));
    *neg_m = 0.0f;
    uint32_t qh = m40_ld4_u16(b + 2);
#pragma unroll
    for (int k = 0; k < 4; k++)
        m40_put_nibbles(m40_ld4_u16(b + 6 + 4 * k), qh, k, 8388624.0f, v); /* q - 16 */
}

/* Q6_K sub-block g of a row (the row 2-byte aligned): the 32 values q - 32
 * in v (6-bit q from 4 low bits in ql and 2 high bits in qh, built four at
 * a time in a word and put under the float exponent by PRMT), and the two
 * 16-element halves' scales d * sc[0], d * sc[1]. */
static __device__ __forceinline__ void m40_q6_k_group(const uint8_t *row, int g, float *v,
                                                      float *s0, float *s1) {
    const uint8_t *b = row + (g >> 3) * 210;
    int s = g & 7, half = s >> 2, t = s & 3;
    const uint8_t *ql = b + half * 64 + (t & 1) * 32, *qh = b + 128 + half * 32;
    const int8_t *sc = (const int8_t *)(b + 192) + half * 8 + t * 2;
    float d = m40_h2f(b + 208);
    *s0 = d * (float)sc[0];
    *s1 = d * (float)sc[1];
    int lshift = (t >> 1) * 4, hshift = 2 * t;
#pragma unroll
    for (int k = 0; k < 8; k++) {
        uint32_t lo = (m40_ld4_u16(ql + 4 * k) >> lshift) & 0x0F0F0F0Fu;
        uint32_t hi = ((m40_ld4_u16(qh + 4 * k) >> hshift) & 0x03030303u) << 4;
        uint32_t q = lo | hi;
#pragma unroll
        for (int j = 0; j < 4; j++)
            v[4 * k + j] = m40_byte_to_f(q, j) - 8388640.0f; /* 2^23 + 32 */
    }
}

/* Block b of row r of a repacked matrix of `rows` rows of nb blocks, scaled
 * (the dequantize kernels; the mat-vecs scale a block's dot product). */
static __device__ __forceinline__ void decode32_q4_0r(const uint8_t *w, unsigned rows, unsigned nb,
                                                      unsigned r, unsigned b, float *v) {
    float d = m40_q4_0r_block(w, rows, nb, r, b, v);
    for (int i = 0; i < 32; i++)
        v[i] *= d;
}

static __device__ __forceinline__ void decode32_q8_0r(const uint8_t *w, unsigned rows, unsigned nb,
                                                      unsigned r, unsigned b, float *v) {
    float d = m40_q8_0r_block(w, rows, nb, r, b, v);
    for (int i = 0; i < 32; i++)
        v[i] *= d;
}

/* ---- repacked Q6_K (repack.cu's m40_repack_q6_k) ------------------------
 *
 * A Q6_K matrix of `rows` rows (a multiple of 8) of nb 32-element blocks
 * (nb / 8 super-blocks of 210 bytes in GGML's rows) as four arrays, each
 * interleaving the rows of a group of 8 (rows 8g .. 8g + 7, row 8g + j at
 * the innermost index j), for 16-byte loads of 4 or 8 adjacent rows:
 *   ql [rows/8][nb][4][8] u32  word p, byte i: the low 4 bits of element
 *                              4p + i (low nibble) and of 16 + 4p + i (high)
 *   qh [rows/8][nb][2][8] u32  word k, byte i: the top 2 bits of elements
 *                              8k + i, 16 + 8k + i, 8k + 4 + i and
 *                              16 + 8k + 4 + i, at bits 0, 2, 4 and 6
 *   sc [rows/8][nb][8]    2 x int8: the block's scales (elements 0..15, 16..31)
 *   d  [rows/8][nb/8][8]  f16: the super-block's scale
 * 210 bytes a super-block and row, GGML's size. Part p (0..3) of a block,
 * elements 4p..4p+3 and 16+4p..16+4p+3 (the repacked loop's order), is
 * ql word p and qh word p / 2 shifted right by 4 (p & 1). */
/* Where qh, sc and d start, in bytes per 32-element block of the matrix
 * (ql at 0): the one definition repack.cu writes and the kernels read. */
#define M40_Q6_KR_QH_AT 16
#define M40_Q6_KR_SC_AT 24
#define M40_Q6_KR_D_AT  26

typedef struct m40_q6_kr_arrays {
    const uint32_t *ql, *qh;
    const unsigned short *sc, *d;
} m40_q6_kr_arrays;

static __device__ __forceinline__ m40_q6_kr_arrays m40_q6_kr_layout(const uint8_t *w, unsigned rows,
                                                                    unsigned nb) {
    const size_t n_blocks = (size_t)rows * nb;
    m40_q6_kr_arrays a;
    a.ql = (const uint32_t *)w;
    a.qh = (const uint32_t *)(w + n_blocks * M40_Q6_KR_QH_AT);
    a.sc = (const unsigned short *)(w + n_blocks * M40_Q6_KR_SC_AT);
    a.d = (const unsigned short *)(w + n_blocks * M40_Q6_KR_D_AT);
    return a;
}

/* Part p's 6-bit values, a byte each: elements 4p..4p+3 in *lo, 16+4p..
 * 16+4p+3 in *hi (no bits cross a byte). */
static __device__ __forceinline__ void m40_q6_kr_part(uint32_t ql, uint32_t qh, unsigned p,
                                                      uint32_t *lo, uint32_t *hi) {
    const uint32_t h = qh >> (4 * (p & 1));
    *lo = (ql & 0x0F0F0F0Fu) | ((h << 4) & 0x30303030u);
    *hi = ((ql >> 4) & 0x0F0F0F0Fu) | ((h << 2) & 0x30303030u);
}

/* Byte j of u as a signed int8, as float (exact, without I2F: the byte
 * plus 128 under the exponent of 2^23). */
static __device__ __forceinline__ float m40_i8_to_f(uint32_t u, int j) {
    return __uint_as_float(__byte_perm(u ^ 0x80808080u, 0x4B000000u, 0x7650u | (unsigned)j)) -
           8388736.0f; /* 2^23 + 128 */
}

/* Block b of row r, GGML's values: (d sc)(q - 32), every product exact
 * (d: 11 significant bits, sc: 7, q - 32: 5). */
static __device__ __forceinline__ void decode32_q6_kr(const uint8_t *w, unsigned rows, unsigned nb,
                                                      unsigned r, unsigned b, float *v) {
    const m40_q6_kr_arrays a = m40_q6_kr_layout(w, rows, nb);
    const size_t blk = (size_t)(r / 8) * nb + b;
    const unsigned j = r % 8, s = a.sc[blk * 8 + j];
    const float d =
        __half2float(__ushort_as_half(a.d[((size_t)(r / 8) * (nb / 8) + b / 8) * 8 + j]));
    const float s0 = d * m40_i8_to_f(s, 0), s1 = d * m40_i8_to_f(s, 1);
    for (unsigned p = 0; p < 4; p++) {
        uint32_t lo, hi;
        m40_q6_kr_part(a.ql[(blk * 4 + p) * 8 + j], a.qh[(blk * 2 + p / 2) * 8 + j], p, &lo, &hi);
        for (int i = 0; i < 4; i++) {
            v[4 * p + i] = s0 * (float)((int)((lo >> (8 * i)) & 63u) - 32);
            v[16 + 4 * p + i] = s1 * (float)((int)((hi >> (8 * i)) & 63u) - 32);
        }
    }
}

#endif /* M40_KERNELS_QUANT_DECODE_CUH */
