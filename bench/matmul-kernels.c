// The matrix products of the transformers on one thread, OpenBLAS's sgemm against oneDNN's
// matmul (docs/performance.md, "Transformers"): the linear layers' products at the shapes of a
// replica's batch (gpt-char: 6 windows of 64 positions, width 128; transformer-rows: 32 images
// of 28 rows, width 64), and attention's Q·Kᵀ over every (sample, head) as a loop of sgemm calls
// against one batched oneDNN product on the same strided views (StridedMatrixProduct).
//
//   gcc -O2 bench/matmul-kernels.c -o /tmp/matmul-kernels -lopenblas -ldnnl && OMP_NUM_THREADS=1 /tmp/matmul-kernels
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
// C[m,n] = A[m,k] * B^T (B stored [n,k]) : the linear forward
static void dense(int m,int k,int n,int transB){
  float*a=malloc(4*m*k),*b=malloc(4*n*k),*c=malloc(4*m*n);
  for(int i=0;i<m*k;i++)a[i]=rand()/(float)RAND_MAX; for(int i=0;i<n*k;i++)b[i]=rand()/(float)RAND_MAX;
  int reps=200; double t0=now();
  for(int r=0;r<reps;r++) cblas_sgemm(CblasRowMajor,CblasNoTrans,transB?CblasTrans:CblasNoTrans,m,n,k,1,a,k,b,transB?k:n,0,c,n);
  double tb=(now()-t0)/reps;
  dnnl_engine_t eng; dnnl_engine_create(&eng,dnnl_cpu,0); dnnl_stream_t st; dnnl_stream_create(&st,eng,dnnl_stream_default_flags);
  dnnl_memory_desc_t ad,bd,cd; dnnl_dims_t da={m,k},db={k,n},dc={m,n};
  dnnl_memory_desc_init_by_tag(&ad,2,da,dnnl_f32,dnnl_ab);
  dnnl_memory_desc_init_by_tag(&bd,2,db,dnnl_f32,transB?dnnl_ba:dnnl_ab);
  dnnl_memory_desc_init_by_tag(&cd,2,dc,dnnl_f32,dnnl_ab);
  dnnl_matmul_desc_t md; dnnl_matmul_desc_init(&md,&ad,&bd,NULL,&cd);
  dnnl_primitive_desc_t pd; dnnl_primitive_desc_create(&pd,&md,NULL,eng,NULL);
  const char*impl; dnnl_primitive_desc_query(pd,dnnl_query_impl_info_str,0,&impl);
  dnnl_primitive_t p; dnnl_primitive_create(&p,pd);
  dnnl_memory_t am,bm,cm; dnnl_memory_create(&am,&ad,eng,a);dnnl_memory_create(&bm,&bd,eng,b);dnnl_memory_create(&cm,&cd,eng,c);
  dnnl_exec_arg_t args[3]={{DNNL_ARG_SRC,am},{DNNL_ARG_WEIGHTS,bm},{DNNL_ARG_DST,cm}};
  dnnl_primitive_execute(p,st,3,args);
  t0=now(); for(int r=0;r<reps;r++) dnnl_primitive_execute(p,st,3,args); double td=(now()-t0)/reps;
  double fl=2.0*m*n*k;
  printf("%4dx%4dx%4d tB=%d  openblas %6.1f GF/s  onednn %6.1f GF/s (%s)\n",m,k,n,transB,fl/tb/1e9,fl/td/1e9,impl);
}
// S[n,h] = Q[n,h] K[n,h]^T ; Q,K in qkv rows [N,T,3d]
static void heads(int N,int H,int T,int e){
  int d=H*e; float*qkv=malloc(4L*N*T*3*d),*s=malloc(4L*N*H*T*T);
  for(long i=0;i<(long)N*T*3*d;i++)qkv[i]=rand()/(float)RAND_MAX;
  int reps=200; double t0=now();
  for(int r=0;r<reps;r++) for(int n=0;n<N;n++) for(int h=0;h<H;h++){
    float*q=qkv+(long)n*T*3*d+h*e,*k=q+d; cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,T,T,e,1,q,3*d,k,3*d,0,s+((long)n*H+h)*T*T,T);}
  double tb=(now()-t0)/reps;
  dnnl_engine_t eng; dnnl_engine_create(&eng,dnnl_cpu,0); dnnl_stream_t st; dnnl_stream_create(&st,eng,dnnl_stream_default_flags);
  dnnl_memory_desc_t ad,bd,cd;
  dnnl_dims_t da={N,H,T,e}, sa={(long)T*3*d,e,3*d,1};
  dnnl_dims_t db={N,H,e,T}, sb={(long)T*3*d,e,1,3*d};
  dnnl_dims_t dc={N,H,T,T}, sc={(long)H*T*T,(long)T*T,T,1};
  dnnl_memory_desc_init_by_strides(&ad,4,da,dnnl_f32,sa);
  dnnl_memory_desc_init_by_strides(&bd,4,db,dnnl_f32,sb);
  dnnl_memory_desc_init_by_strides(&cd,4,dc,dnnl_f32,sc);
  dnnl_matmul_desc_t md; int st2=dnnl_matmul_desc_init(&md,&ad,&bd,NULL,&cd);
  dnnl_primitive_desc_t pd; int st3=dnnl_primitive_desc_create(&pd,&md,NULL,eng,NULL);
  if(st2||st3){printf("fail %d %d\n",st2,st3);return;}
  const char*impl; dnnl_primitive_desc_query(pd,dnnl_query_impl_info_str,0,&impl);
  dnnl_primitive_t p; dnnl_primitive_create(&p,pd);
  dnnl_memory_t am,bm,cm; dnnl_memory_create(&am,&ad,eng,qkv);dnnl_memory_create(&bm,&bd,eng,qkv+d);dnnl_memory_create(&cm,&cd,eng,s);
  dnnl_exec_arg_t args[3]={{DNNL_ARG_SRC,am},{DNNL_ARG_WEIGHTS,bm},{DNNL_ARG_DST,cm}};
  dnnl_primitive_execute(p,st,3,args);
  t0=now(); for(int r=0;r<reps;r++) dnnl_primitive_execute(p,st,3,args); double td=(now()-t0)/reps;
  double fl=2.0*N*H*T*T*e;
  printf("N%d H%d T%d e%d  openblas loop %6.1f GF/s  onednn batched %6.1f GF/s (%s)\n",N,H,T,e,fl/tb/1e9,fl/td/1e9,impl);
}
int main(){
  openblas_set_num_threads(1);
  dense(384,128,384,1); dense(384,128,512,1); dense(384,512,128,1); dense(384,128,73,1);
  dense(896,64,192,1); dense(896,64,256,1); dense(896,256,64,1);
  dense(384,128,128,0); dense(384,384,128,0);
  heads(6,4,64,32); heads(32,4,28,16); heads(32,6,256,64);
  return 0;}
