// Internal: causal attention through cuDNN's fused scaled-dot-product attention (its flash
// kernels, on tensor cores), built with the cuDNN frontend's graph API
// (kernels/cuda/attention_cudnn_frontend.cpp; Note [cudnn sdpa] there). A build without cuDNN or
// without the frontend's headers has no CUDA kernel for these stubs.
#pragma once

#include <string>

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// Why the cuDNN attention kernels can be missing from a build.
inline constexpr const char* kNeedsCudnnFrontend =
    "the cuDNN attention kernels need cuDNN >= 9 and the cuDNN frontend's headers, and kirzl was built without "
    "them (pip install nvidia-cudnn-frontend, then configure with -DKIRZL_WITH_CUDNN=ON; the configure summary "
    "says what was found)";

/// What the cuDNN kernels can take at all, before asking cuDNN: bf16 or f16 with a head dim that
/// is a positive multiple of 8 and at most 256 (cuDNN 9's fused attention; whether this GPU and
/// cuDNN version take the shape is the graph's support check, cudnn_attention_support). Returns
/// an empty string when it can, else the reason.
std::string cudnn_attention_static_reason(DType dtype, int64_t head_dim);

/// Whether cuDNN takes causal attention of q's shape and dtype ([B, H, T, D]) on q's device:
/// builds (once per device, dtype and shape; cached) the forward and backward graphs in the
/// contiguous layout and returns an empty string when both are supported, else the reason
/// (cudnn_attention_static_reason's, or cuDNN's). Never throws for an unsupported shape; errors
/// of CUDA itself are thrown. Strides do not change the answer (Note [cudnn sdpa]).
KIRZL_DECLARE_KERNEL_REQUIRING(cudnn_attention_support, kNeedsCudnnFrontend, std::string (*)(const Tensor& q));

/// Causal attention forward: q, k, v 4-D [B, H, T, D], bf16 or f16, any strides with stride 1 in
/// the last dim (e.g. views of a [B, T, 3C] projection: strides (T*3C, D, 3C, 1)); out [B, H, T, D]
/// in q's dtype with any such strides (written through them); lse contiguous f32 [B, H, T], the
/// natural-log sum of exp(q_i . k_j * scale) over j <= i (as the flash kernels save it). Issued on
/// the current stream of q's device.
KIRZL_DECLARE_KERNEL_REQUIRING(cudnn_attention_forward, kNeedsCudnnFrontend, void (*)(Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v, double scale));

/// Gradients from g = d out, the saved out and lse of cudnn_attention_forward. gq, gk, gv are
/// [B, H, T, D] in q's dtype with any strides that have stride 1 in the last dim (e.g. the three
/// views of one [B, T, 3C] gradient, written in place: Note [cudnn sdpa]); g and out likewise.
KIRZL_DECLARE_KERNEL_REQUIRING(cudnn_attention_backward, kNeedsCudnnFrontend, void (*)(Tensor& gq, Tensor& gk, Tensor& gv, const Tensor& g, const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v, double scale));

}  // namespace kirzl::kernels
