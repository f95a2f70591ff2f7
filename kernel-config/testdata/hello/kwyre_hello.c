// SPDX-License-Identifier: GPL-2.0
// A module that only announces itself: the boot test loads it signed with
// the build's key (must load), unsigned and signed with another key (both
// must be refused).
#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

static int __init kwyre_hello_init(void)
{
	pr_info("kwyre_hello: loaded\n");
	return 0;
}
module_init(kwyre_hello_init);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Kwyre module signature test");
