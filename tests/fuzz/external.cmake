# Included from tests/CMakeLists.txt by the main (g++) build: builds the fuzz tree with clang as an
# external project (SURGE_FUZZ=ON builds only net/ and tests/fuzz) and runs fuzz_request and
# fuzz_token for a bounded time as the ctest tests of the same names (label "fuzz"). Without
# clang++-14 nothing is added and a warning says so.
include(ExternalProject)

find_program(SURGE_FUZZ_CLANGXX NAMES clang++-14)
if(NOT SURGE_FUZZ_CLANGXX)
  message(WARNING "clang++-14 not found: the fuzz targets and tests are skipped")
else()
  set(SURGE_FUZZ_BUILD_DIR ${CMAKE_BINARY_DIR}/fuzz-build)
  ExternalProject_Add(surge_fuzz
    SOURCE_DIR ${PROJECT_SOURCE_DIR}
    BINARY_DIR ${SURGE_FUZZ_BUILD_DIR}
    CMAKE_ARGS
      -DSURGE_FUZZ=ON
      -DCMAKE_CXX_COMPILER=${SURGE_FUZZ_CLANGXX}
      -DCMAKE_BUILD_TYPE=RelWithDebInfo
    BUILD_COMMAND ${CMAKE_COMMAND} --build ${SURGE_FUZZ_BUILD_DIR} --target fuzz_request fuzz_token
                  -j 2
    INSTALL_COMMAND ""
    BUILD_ALWAYS ON
  )

  # libFuzzer adds what it finds to its first corpus directory: run on a copy, never on the
  # checked-in seeds.
  set(SURGE_FUZZ_CORPUS ${CMAKE_BINARY_DIR}/fuzz-corpus/fuzz_request)
  file(MAKE_DIRECTORY ${SURGE_FUZZ_CORPUS})
  file(GLOB SURGE_FUZZ_SEEDS ${CMAKE_CURRENT_LIST_DIR}/corpus/*)
  file(COPY ${SURGE_FUZZ_SEEDS} DESTINATION ${SURGE_FUZZ_CORPUS})
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${SURGE_FUZZ_SEEDS})

  add_test(NAME fuzz_request
    COMMAND ${SURGE_FUZZ_BUILD_DIR}/tests/fuzz/fuzz_request
            -max_total_time=20 -rss_limit_mb=2048 ${SURGE_FUZZ_CORPUS})
  set_tests_properties(fuzz_request PROPERTIES LABELS fuzz TIMEOUT 120)

  set(SURGE_FUZZ_TOKEN_CORPUS ${CMAKE_BINARY_DIR}/fuzz-corpus/fuzz_token)
  file(MAKE_DIRECTORY ${SURGE_FUZZ_TOKEN_CORPUS})
  file(GLOB SURGE_FUZZ_TOKEN_SEEDS ${CMAKE_CURRENT_LIST_DIR}/corpus_token/*)
  file(COPY ${SURGE_FUZZ_TOKEN_SEEDS} DESTINATION ${SURGE_FUZZ_TOKEN_CORPUS})
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${SURGE_FUZZ_TOKEN_SEEDS})

  add_test(NAME fuzz_token
    COMMAND ${SURGE_FUZZ_BUILD_DIR}/tests/fuzz/fuzz_token
            -max_total_time=20 -rss_limit_mb=2048 ${SURGE_FUZZ_TOKEN_CORPUS})
  set_tests_properties(fuzz_token PROPERTIES LABELS fuzz TIMEOUT 120)
endif()
