// Neural-network modules.
#pragma once

#include "kirzl/nn/attention.hpp"
#include "kirzl/nn/containers.hpp"
#include "kirzl/nn/init.hpp"
#include "kirzl/nn/layers.hpp"
#include "kirzl/nn/module.hpp"
#include "kirzl/nn/sync_batch_norm.hpp"
