// Internal (CPU): a multiply-add whose rounding does not depend on where the compiler put it.
//
// Note [explicit fma]: GCC (-ffp-contract=fast, its default) fuses `a * b + c` into one FMA where
// it sees fit, and it did so in some loops of one function and not in others: the 2-row f64 block
// of rows_times_matrix added its terms with FMAs in one translation unit and with a rounded
// product in another, so a sum's bits depended on which loop added which of its terms. Kernels
// that promise the same bits however their work is divided (Note [rows times matrix], Note
// [flash attention threads]) or the same values in a vectorised loop as in one call (vec_exp)
// write their multiply-adds as mul_add: one rounding where the target has FMA, two where it does
// not (a portable build, which then has no FMA to contract into either), the same everywhere in
// one build.
#pragma once

#include <cmath>

namespace kirzl::kernels::cpu {

/// x * y + acc, fused where the target has FMA (Note [explicit fma]).
template <typename A>
inline A mul_add(A x, A y, A acc) {
#ifdef __FMA__
  return std::fma(x, y, acc);
#else
  return acc + x * y;
#endif
}

}  // namespace kirzl::kernels::cpu
