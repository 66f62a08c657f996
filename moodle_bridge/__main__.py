from moodle_bridge.cli import main

main()
