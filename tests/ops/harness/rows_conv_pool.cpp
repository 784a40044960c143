#include "ops/harness/op_table.hpp"
namespace kirzl::testing::op_table {
void add_conv_pool_rows(std::vector<Row>&) {}
}
