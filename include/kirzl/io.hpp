// The io layer: safetensors files, training checkpoints (whole and sharded), metrics log, energy meter, progress bar, timeline trace.
#pragma once

#include "kirzl/io/checkpoint.hpp"
#include "kirzl/io/energy.hpp"
#include "kirzl/io/metrics.hpp"
#include "kirzl/io/progress.hpp"
#include "kirzl/io/safetensors.hpp"
#include "kirzl/io/sharded_checkpoint.hpp"
#include "kirzl/io/timeline.hpp"
