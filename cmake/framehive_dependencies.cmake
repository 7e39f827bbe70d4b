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
