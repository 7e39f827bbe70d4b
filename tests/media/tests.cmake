# Unit tests of media/ that need no cluster: clips written and joined here are
# read back with the ffmpeg and ffprobe CLIs.
framehive_add_test(clip_writer_test
  SOURCES media/clip_writer_test.cpp
  LIBS framehive::media framehive::common
  DEFINITIONS FRAMEHIVE_OPENCV_DATA="/usr/share/doc/opencv-doc/examples/data"
  TIMEOUT 60)
