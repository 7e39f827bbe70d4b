# Unit tests of analysis/: the catalog (no OpenCV) and the analyzers it names.
framehive_add_test(catalog_test
  SOURCES analysis/catalog_test.cpp
  LIBS framehive::catalog
  TIMEOUT 30)

# The stored form of a per-frame result (analysis/result_codec): round trips,
# size, and forged bytes.
framehive_add_test(result_codec_test
  SOURCES analysis/result_codec_test.cpp
  LIBS framehive::catalog
  TIMEOUT 30)

framehive_add_test(analyzers_test
  SOURCES analysis/analyzers_test.cpp
  LIBS framehive::analysis opencv_core opencv_imgproc opencv_videoio
  TIMEOUT 120)

# detect with DNN models the test writes itself (issue 13 item 5).
framehive_add_test(dnn_test
  SOURCES analysis/dnn_test.cpp
  LIBS framehive::analysis opencv_core opencv_imgproc
  TIMEOUT 120)
target_include_directories(dnn_test PRIVATE ${PROJECT_SOURCE_DIR})

# The clips analyzer's decisions: plain logic, no frames.
framehive_add_test(clip_planner_test
  SOURCES analysis/clip_planner_test.cpp
  LIBS framehive::analysis
  TIMEOUT 30)

# The clips analyzer in-process, restarts from checkpoints included.
framehive_add_test(clips_analyzer_test
  SOURCES analysis/clips_analyzer_test.cpp
  LIBS framehive::analysis opencv_core opencv_imgproc
  TIMEOUT 120)
target_include_directories(clips_analyzer_test PRIVATE ${PROJECT_SOURCE_DIR})
