// oneDNN's C API, from Debian's libdnnl-dev (oneDNN 2.x, OpenMP runtime).
#include <dnnl.h>

// Execution-argument indices as constants: Swift does not import macros defined as other macros.
static const int cohort_dnnl_arg_src = DNNL_ARG_SRC;
static const int cohort_dnnl_arg_dst = DNNL_ARG_DST;
static const int cohort_dnnl_arg_weights = DNNL_ARG_WEIGHTS;
static const int cohort_dnnl_arg_bias = DNNL_ARG_BIAS;
static const int cohort_dnnl_arg_diff_src = DNNL_ARG_DIFF_SRC;
static const int cohort_dnnl_arg_diff_dst = DNNL_ARG_DIFF_DST;
static const int cohort_dnnl_arg_diff_weights = DNNL_ARG_DIFF_WEIGHTS;
static const int cohort_dnnl_arg_diff_bias = DNNL_ARG_DIFF_BIAS;
static const int cohort_dnnl_arg_from = DNNL_ARG_FROM;
static const int cohort_dnnl_arg_to = DNNL_ARG_TO;
static const int cohort_dnnl_arg_scratchpad = DNNL_ARG_SCRATCHPAD;
