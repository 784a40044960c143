// CPU threading of kirzl's kernels (OpenMP when available).
#pragma once

namespace kirzl {

/// Threads used by CPU kernels (GEMM and large elementwise loops). Default: OpenMP's default
/// (usually the number of cores) or OMP_NUM_THREADS. Data-parallel runs with one rank per core
/// should set 1.
void set_num_threads(int n);
int get_num_threads();

}  // namespace kirzl
