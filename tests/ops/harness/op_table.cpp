// Every row of the op table, family by family (each family in its rows_<family>.cpp).
#include "ops/harness/op_table.hpp"

namespace kirzl::testing::op_table {

std::vector<Row> all_rows() {
  std::vector<Row> rows;
  add_unary_rows(rows);
  add_binary_rows(rows);
  add_reduce_rows(rows);
  add_linalg_rows(rows);
  add_nn_rows(rows);
  add_conv_pool_rows(rows);
  add_loss_rows(rows);
  add_attention_rows(rows);
  add_fused_rows(rows);
  add_copy_shape_rows(rows);
  return rows;
}

}  // namespace kirzl::testing::op_table
