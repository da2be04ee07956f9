# Sources of src/backend/: the door (backend.c) and the two backends.
set(M40_BACKEND_SOURCES
  backend/backend.c
  backend/cpu/ops.c
  backend/cpu/forward.c
  backend/cuda/driver.c
  backend/cuda/device.c
  backend/cuda/cublas.c
  backend/cuda/gpu.c
  backend/cuda/ops.c
  backend/cuda/weights.c
  backend/cuda/forward.c
  backend/cuda/cuda_backend.c
)
