# Unit tests of the coordinator's plain classes: no processes, no sleeps.
framehive_add_test(scheduler_test
  SOURCES coordinator/scheduler_test.cpp
  LIBS framehive::scheduler
  TIMEOUT 30)

framehive_add_test(admission_test
  SOURCES coordinator/admission_test.cpp
  LIBS framehive::scheduler
  TIMEOUT 30)

framehive_add_test(job_store_test
  SOURCES coordinator/job_store_test.cpp
  LIBS framehive::coordinator SQLite::SQLite3
  TIMEOUT 30)

# The actor as an adapter: in-process actors and a temporary job store.
framehive_add_test(coordinator_actor_test
  SOURCES coordinator/coordinator_actor_test.cpp
  LIBS framehive::coordinator framehive::identity SQLite::SQLite3
  TIMEOUT 60)

framehive_add_test(blob_store_test
  SOURCES coordinator/blob_store_test.cpp
  LIBS framehive::coordinator framehive::identity
  TIMEOUT 30)
