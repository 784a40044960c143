// Optimizers, gradient clipping and learning-rate schedules.
#pragma once

#include "kirzl/optim/adam.hpp"
#include "kirzl/optim/clip.hpp"
#include "kirzl/optim/lamb.hpp"
#include "kirzl/optim/lr_scheduler.hpp"
#include "kirzl/optim/optimizer.hpp"
#include "kirzl/optim/sgd.hpp"
