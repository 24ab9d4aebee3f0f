// Open MPI's C API. Its handles (MPI_COMM_WORLD, MPI_FLOAT, ...) are macros over
// addresses of global objects, which Swift cannot import: these accessors expose them.
#include <mpi.h>

static inline MPI_Comm cohort_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype cohort_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype cohort_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Op cohort_mpi_sum(void) { return MPI_SUM; }
static inline void *cohort_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Request cohort_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *cohort_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline int cohort_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline MPI_Info cohort_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline MPI_Errhandler cohort_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int cohort_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int cohort_mpi_success(void) { return MPI_SUCCESS; }
static inline int cohort_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline MPI_Datatype cohort_mpi_int(void) { return MPI_INT; }
static inline MPI_Datatype cohort_mpi_uint16(void) { return MPI_UINT16_T; }
static inline int cohort_mpi_any_source(void) { return MPI_ANY_SOURCE; }
