// The reason every CUDA entry point of a build without CUDA gives, with how to get the backend.
#pragma once

namespace kirzl::detail {

// pip users get a CPU-only wheel by default (pyproject.toml), so the pip way is named too.
inline constexpr const char* kBuiltWithoutCuda =
    "kirzl was built without CUDA (to build the CUDA backend, configure with KIRZL_WITH_CUDA=ON and the CUDA "
    "toolkit, or: pip install . -C cmake.define.KIRZL_WITH_CUDA=ON)";

}  // namespace kirzl::detail
