#!/bin/sh
# Builds and runs bench/qgemm_micro.cc (single-thread qgemm kernel microbenchmark, no Node).
#   sh bench/qgemm_micro.sh [types] [N] [K] [T list] [isa]
# e.g. sh bench/qgemm_micro.sh q4_0,q8_0,q4_k,q6_k 1024 2048 64,256,512
# QGEMM_MICRO_MAIN=file.cc builds another main against the same kernels, e.g.
#   QGEMM_MICRO_MAIN=bench/qgemm512_check.cc sh bench/qgemm_micro.sh check
set -e
cd "$(dirname "$0")/.."
O=${QGEMM_MICRO_DIR:-/tmp/qgemm_micro_build}
mkdir -p "$O"
CXX=${CXX:-g++}
FLAGS="-O3 -DNDEBUG -std=c++17 -DQM_HAVE_X86_KERNELS -fno-math-errno"
objs=""
# QGEMM_MICRO_CPU=dir: take the native/cpu kernel sources from another folder (to compare versions).
C=${QGEMM_MICRO_CPU:-native/cpu}
M=${QGEMM_MICRO_MAIN:-bench/qgemm_micro.cc}
for f in native/common.cc native/cpu_features.cc $C/qgemm.cc $C/qgemm_scalar.cc \
         $C/quants.cc $C/quants_k.cc $C/matmul_scalar.cc $M \
         $C/*qgemm*_avx2.cc $C/quants*_avx2.cc $C/matmul_avx2.cc \
         $C/*qgemm*_avx512.cc $C/matmul_avx512.cc; do
  [ -f "$f" ] || continue
  extra=""
  case "$f" in
    *_avx2.cc) extra="-mavx2 -mfma -mf16c" ;;
    *_avx512.cc) extra="-mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni" ;;
  esac
  o="$O/$(echo "$f" | tr / _).o"
  if [ ! -f "$o" ] || [ "$f" -nt "$o" ] || [ -n "$(find $C -name '*.h' -newer "$o")" ]; then
    $CXX $FLAGS $extra -I$C -c "$f" -o "$o"
  fi
  objs="$objs $o"
done
B="$O/$(basename "$M" .cc)_$(echo "$C" | tr / _)"
$CXX -o "$B" $objs -lpthread
"$B" "$@"
