// Internal (MPI backend only): every MPI tag kirzl sends with, in one place, so that no two kinds
// of message on one MPI communicator share a tag. Ranks must agree on them: all ranks run one build.
#pragma once

#include "comm/transport.h"

namespace kirzl::comm::detail {

// Failure notices (Note [mpi timeouts]); they travel on a private duplicate of the communicator,
// so this tag may equal one used on the communicator itself.
inline constexpr int kNoticeTag = 7301;
// Arrival messages (Note [fused small all-reduce]), and the tails of the long ones (Note [arrival tail]).
inline constexpr int kArrivalTag = 7301;
inline constexpr int kArrivalTailTag = 7302;
// The ring's channel c (mpi_transport.h) travels with tag kRingTag + c.
inline constexpr int kRingTag = 7303;
static_assert(kArrivalTailTag < kRingTag, "the ring's tags follow the arrival's");

}  // namespace kirzl::comm::detail
