// kirzl::data: datasets, samplers, the prefetching DataLoader and the IDX/Fashion-MNIST readers.
#pragma once

#include "kirzl/data/dataloader.hpp"
#include "kirzl/data/dataset.hpp"
#include "kirzl/data/fashion_mnist.hpp"
#include "kirzl/data/idx.hpp"
#include "kirzl/data/sampler.hpp"
#include "kirzl/data/token_shards.hpp"
#include "kirzl/data/tokenizer.hpp"
