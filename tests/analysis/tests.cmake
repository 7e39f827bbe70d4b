# Unit tests of analysis/: the catalog (no OpenCV) and the analyzers it names.
framehive_add_test(catalog_test
  SOURCES analysis/catalog_test.cpp
  LIBS framehive::catalog
  TIMEOUT 30)

framehive_add_test(analyzers_test
  SOURCES analysis/analyzers_test.cpp
  LIBS framehive::analysis opencv_core opencv_imgproc opencv_videoio
  TIMEOUT 120)
