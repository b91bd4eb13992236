// Small helpers shared by the standalone C++ microbenchmarks in bench/ (qgemm_micro.cc,
// qgemm512_check.cc): CPU time of the calling thread, comma-separated argument lists.
#pragma once
#include <time.h>

#include <string>
#include <vector>

// CPU time of the calling thread (other processes on a shared machine disturb it less than wall time).
inline double thread_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// "a,b,,c" -> {"a", "b", "c"}
inline std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t p = 0;
  while (p <= s.size()) {
    size_t q = s.find(',', p);
    if (q == std::string::npos) q = s.size();
    if (q > p) out.push_back(s.substr(p, q - p));
    p = q + 1;
  }
  return out;
}
