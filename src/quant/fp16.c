/* fp16.c - row conversions between FP16/BF16 and FP32 (see fp16.h). The
 * 2-byte elements are moved with memcpy because a row inside a mapped GGUF
 * file is not guaranteed to be 2-byte aligned; compilers turn the memcpy
 * into a plain load or store. */
#include "quant/fp16.h"

void m40_fp16_to_fp32_row(const void *src, float *dst, int64_t n) {
    const unsigned char *s = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        dst[i] = m40_fp16_to_fp32(h);
    }
}

void m40_fp32_to_fp16_row(const float *src, void *dst, int64_t n) {
    unsigned char *d = dst;
    for (int64_t i = 0; i < n; i++) {
        const uint16_t h = m40_fp32_to_fp16(src[i]);
        memcpy(d + 2 * i, &h, 2);
    }
}

void m40_bf16_to_fp32_row(const void *src, float *dst, int64_t n) {
    const unsigned char *s = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        dst[i] = m40_bf16_to_fp32(h);
    }
}

void m40_fp32_to_bf16_row(const float *src, void *dst, int64_t n) {
    unsigned char *d = dst;
    for (int64_t i = 0; i < n; i++) {
        const uint16_t h = m40_fp32_to_bf16(src[i]);
        memcpy(d + 2 * i, &h, 2);
    }
}
