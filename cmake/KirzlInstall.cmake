include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS kirzl EXPORT kirzlTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/kirzl DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/include/kirzl/config.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/kirzl)
install(EXPORT kirzlTargets NAMESPACE kirzl:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/kirzl)
configure_package_config_file(cmake/kirzlConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/kirzlConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/kirzl)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/kirzlConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/kirzlConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/kirzlConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/kirzl)
