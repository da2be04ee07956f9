/* test_gpu_engine.c - the engine's batching on CUDA (engine_batch.h).
 *
 *   test_gpu_engine MODEL.gguf [MODEL.gguf ...]
 *
 * For each model: 8 requests at once on CUDA (prompts of mixed lengths,
 * greedy ones through the device argmax, seeded sampling through the host
 * sampler) each give byte for byte the text they give alone, and the
 * engine's steps carried several requests' decode tokens at once. The CPU
 * runs the same check in CI (test_engine.c).
 */
#include "check.h"
#include "engine_batch.h"
#include "gpu_test.h"

int main(int argc, char **argv) {
    m40_gpu probe;
    gpu_test_open(&probe); /* exits 77 with the skip line when there is no GPU */
    m40_gpu_close(&probe);
    if (argc < 2) {
        fprintf(stderr, "usage: test_gpu_engine MODEL.gguf...\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        int before = check_failed_;
        check_batched_equals_alone(argv[i], M40_DEVICE_CUDA);
        check_prompt_cache(argv[i], M40_DEVICE_CUDA, 0);
        check_prompt_store(argv[i], M40_DEVICE_CUDA, 0);
        printf("%s: 8 requests at once %s their solo runs\n", argv[i],
               check_failed_ == before ? "equal" : "DIFFER FROM");
    }
    return check_report();
}
