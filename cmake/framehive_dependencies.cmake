# Imported targets for every third-party library, all from Debian 12 packages
# (scripts/setup.sh installs them). Nothing is downloaded at build time.

find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(Boost 1.74 REQUIRED)

pkg_check_modules(FFMPEG REQUIRED IMPORTED_TARGET
  libavformat libavcodec libavutil libswscale)
add_library(framehive_ffmpeg INTERFACE)
target_link_libraries(framehive_ffmpeg INTERFACE PkgConfig::FFMPEG)
add_library(FFmpeg::ffmpeg ALIAS framehive_ffmpeg)

find_package(GTest REQUIRED)

# CAF 0.17 as Debian packages it: libraries and headers, no CMake package.
find_path(CAF_INCLUDE_DIR caf/all.hpp REQUIRED)
find_library(CAF_CORE_LIB caf_core REQUIRED)
find_library(CAF_IO_LIB caf_io REQUIRED)
add_library(CAF::core UNKNOWN IMPORTED)
set_target_properties(CAF::core PROPERTIES
  IMPORTED_LOCATION "${CAF_CORE_LIB}"
  INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}"
  INTERFACE_LINK_LIBRARIES Threads::Threads)
add_library(CAF::io UNKNOWN IMPORTED)
set_target_properties(CAF::io PROPERTIES
  IMPORTED_LOCATION "${CAF_IO_LIB}"
  INTERFACE_LINK_LIBRARIES CAF::core)
# CAF's TLS transport (libcaf-openssl links libssl itself).
find_library(CAF_OPENSSL_LIB caf_openssl REQUIRED)
add_library(CAF::openssl UNKNOWN IMPORTED)
set_target_properties(CAF::openssl PROPERTIES
  IMPORTED_LOCATION "${CAF_OPENSSL_LIB}"
  INTERFACE_LINK_LIBRARIES CAF::io)

# libcrypto for the cluster's PKI (common/identity): keys, certificates, proofs;
# libssl for the fix of CAF's TLS sessions (actors/lifecycle.cpp).
find_package(OpenSSL 3 REQUIRED COMPONENTS Crypto SSL)

find_package(OpenCV 4 REQUIRED COMPONENTS core imgproc imgcodecs objdetect video dnn)
find_package(nlohmann_json 3 REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(SQLite3 REQUIRED)
# Metrics endpoints (Debian's prometheus-cpp-dev: targets prometheus-cpp::core and ::pull).
find_package(prometheus-cpp CONFIG REQUIRED)
