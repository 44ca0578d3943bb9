# Included from tests/CMakeLists.txt by the main (g++) build: builds the fuzz tree with clang as an
# external project (SURGE_FUZZ=ON builds only net/ and tests/fuzz) and runs fuzz_request,
# fuzz_token and fuzz_webhook for a bounded time as the ctest tests of the same names (label
# "fuzz"). Without clang++-14 nothing is added and a warning says so.
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
                  fuzz_webhook
                  -j 2
    INSTALL_COMMAND ""
    BUILD_ALWAYS ON
  )

  # libFuzzer adds what it finds to its first corpus directory: each target runs on a copy of
  # its seeds, never on the checked-in ones.
  set(surge_fuzz_targets fuzz_request fuzz_token fuzz_webhook)
  set(surge_fuzz_seed_dirs corpus corpus_token corpus_webhook)
  foreach(target seed_dir IN ZIP_LISTS surge_fuzz_targets surge_fuzz_seed_dirs)
    set(corpus ${CMAKE_BINARY_DIR}/fuzz-corpus/${target})
    file(MAKE_DIRECTORY ${corpus})
    file(GLOB seeds ${CMAKE_CURRENT_LIST_DIR}/${seed_dir}/*)
    file(COPY ${seeds} DESTINATION ${corpus})
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${seeds})

    add_test(NAME ${target}
      COMMAND ${SURGE_FUZZ_BUILD_DIR}/tests/fuzz/${target}
              -max_total_time=20 -rss_limit_mb=2048 ${corpus})
    set_tests_properties(${target} PROPERTIES LABELS fuzz TIMEOUT 120)
  endforeach()
endif()
