# KIRZL_SANITIZE: build everything (library, tests, examples, benchmarks) with a sanitizer.
#   ""                   no sanitizer (the default)
#   "address,undefined"  AddressSanitizer (+ LeakSanitizer) and UndefinedBehaviorSanitizer
#   "thread"             ThreadSanitizer
# Any other value, and combinations the compilers do not support together (thread with address),
# stop the configure with the accepted values. See Note [sanitizer builds].
#
# Note [sanitizer builds]
# ~~~~~~~~~~~~~~~~~~~~~~~
# The flags are added with add_compile_options/add_link_options before any target exists, so
# every target of the project is instrumented alike; a sanitizer runtime that sees uninstrumented
# kirzl code misses its bugs (ASan) or reports false races on it (TSan). The exported kirzl
# target carries the link flag, so a consumer of an instrumented install (tests/install) links
# the runtime too. UBSan is made fatal (-fno-sanitize-recover) so that a finding fails the test
# instead of printing a line that nobody reads. The runtime options (abort on the first error,
# leak checking, suppressions) are set for ctest in one place, tests/sanitizers/environment.cmake,
# from KIRZL_SANITIZER_ENVIRONMENT below. Third-party code is not instrumented (libgomp, Open MPI,
# zlib): OpenMP's barriers are invisible to TSan, so the TSan tree is configured without OpenMP
# (scripts/test.sh, -DCMAKE_DISABLE_FIND_PACKAGE_OpenMP=ON), where kirzl's loops run serially.
set(KIRZL_SANITIZE "" CACHE STRING "Build with sanitizers: empty (none), address,undefined, or thread")
set_property(CACHE KIRZL_SANITIZE PROPERTY STRINGS "" "address,undefined" "thread")

set(KIRZL_SANITIZER_ENVIRONMENT "")
if(NOT KIRZL_SANITIZE STREQUAL "")
  # Normalise the order ("undefined,address" is accepted as the same combination).
  string(REPLACE "," ";" _kirzl_sanitizers "${KIRZL_SANITIZE}")
  list(REMOVE_DUPLICATES _kirzl_sanitizers)
  list(SORT _kirzl_sanitizers)
  list(JOIN _kirzl_sanitizers "," _kirzl_sanitize)
  if(NOT _kirzl_sanitize MATCHES "^(address,undefined|thread)$")
    message(FATAL_ERROR
      "KIRZL_SANITIZE='${KIRZL_SANITIZE}' is not supported. Use one of:\n"
      "  -DKIRZL_SANITIZE=address,undefined   (ASan + LeakSanitizer + UBSan)\n"
      "  -DKIRZL_SANITIZE=thread              (TSan; it cannot be combined with address or leak)\n"
      "  -DKIRZL_SANITIZE=                    (no sanitizer)")
  endif()
  if(KIRZL_HAS_CUDA OR CMAKE_CUDA_COMPILER)
    message(WARNING "KIRZL_SANITIZE=${KIRZL_SANITIZE}: only host C++ code is instrumented; CUDA "
                    "kernels are not, and ASan's shadow memory can clash with the CUDA driver")
  endif()

  set(_kirzl_sanitize_flags -fsanitize=${_kirzl_sanitize} -fno-omit-frame-pointer)
  if(_kirzl_sanitize MATCHES "undefined")
    list(APPEND _kirzl_sanitize_flags -fno-sanitize-recover=undefined)
  endif()
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${_kirzl_sanitize_flags}>")
  add_link_options(-fsanitize=${_kirzl_sanitize})
  set(KIRZL_SANITIZE_LINK_FLAG -fsanitize=${_kirzl_sanitize})

  set(_kirzl_supp_dir ${PROJECT_SOURCE_DIR}/tests/sanitizers)
  if(_kirzl_sanitize STREQUAL "thread")
    list(APPEND KIRZL_SANITIZER_ENVIRONMENT
      "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=${_kirzl_supp_dir}/tsan.supp")
  else()
    list(APPEND KIRZL_SANITIZER_ENVIRONMENT
      "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_init_order=1:suppressions=${_kirzl_supp_dir}/asan.supp"
      "LSAN_OPTIONS=suppressions=${_kirzl_supp_dir}/lsan.supp:print_suppressions=0"
      "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=${_kirzl_supp_dir}/ubsan.supp")
  endif()
  message(STATUS "kirzl: sanitizers ${_kirzl_sanitize}; test environment: ${KIRZL_SANITIZER_ENVIRONMENT}")
endif()

# Gives the tests added with add_test in the calling directory the sanitizer runtime options.
function(kirzl_sanitizer_environment_for_directory_tests)
  if(NOT KIRZL_SANITIZER_ENVIRONMENT)
    return()
  endif()
  get_directory_property(_tests TESTS)
  foreach(t IN LISTS _tests)
    set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT ${KIRZL_SANITIZER_ENVIRONMENT})
  endforeach()
endfunction()

# Gives the tests that gtest_discover_tests finds in TARGETS the sanitizer runtime options. The
# tests exist only when ctest runs, so this writes a script that ctest includes after them.
function(kirzl_sanitizer_environment_for_discovered_tests)
  if(NOT KIRZL_SANITIZER_ENVIRONMENT)
    return()
  endif()
  set(script "${CMAKE_CURRENT_BINARY_DIR}/sanitizer_environment.cmake")
  set(text "")
  foreach(target IN LISTS ARGN)
    string(APPEND text "foreach(t IN LISTS ${target}_TESTS)\n"
                       "  set_tests_properties(\"\${t}\" PROPERTIES ENVIRONMENT \"${KIRZL_SANITIZER_ENVIRONMENT}\")\n"
                       "endforeach()\n")
  endforeach()
  file(WRITE "${script}" "${text}")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${script}")
endfunction()
