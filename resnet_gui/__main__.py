from resnet_gui.cli import main

raise SystemExit(main())
