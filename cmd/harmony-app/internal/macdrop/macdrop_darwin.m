// macdrop_darwin.m: the AppKit half of the drop target. Gio's view class
// has no NSDraggingDestination methods, so they are added to it at run
// time; the view is registered for file URLs on the main thread.

//go:build !ios && cgo

#import <AppKit/AppKit.h>
#include <objc/runtime.h>
#include <stdlib.h>
#include "_cgo_export.h"

static NSDictionary *fileURLsOnly(void) {
	return @{NSPasteboardURLReadingFileURLsOnlyKey : @YES};
}

static NSDragOperation harmonyDraggingEntered(id self, SEL _cmd, id<NSDraggingInfo> sender) {
	if (!harmonyMacdropActive()) {
		return NSDragOperationNone;
	}
	NSPasteboard *pb = [sender draggingPasteboard];
	if ([pb canReadObjectForClasses:@[ [NSURL class] ] options:fileURLsOnly()]) {
		return NSDragOperationCopy;
	}
	return NSDragOperationNone;
}

static BOOL harmonyPerformDragOperation(id self, SEL _cmd, id<NSDraggingInfo> sender) {
	NSArray<NSURL *> *urls = [[sender draggingPasteboard] readObjectsForClasses:@[ [NSURL class] ]
	                                                                    options:fileURLsOnly()];
	if (urls.count == 0) {
		return NO;
	}
	const char **paths = calloc(urls.count, sizeof(char *));
	if (paths == NULL) {
		return NO;
	}
	int n = 0;
	for (NSURL *u in urls) {
		// Valid until the enclosing autorelease pool drains; Go copies them.
		const char *p = [u isFileURL] ? [u fileSystemRepresentation] : NULL;
		if (p != NULL) {
			paths[n++] = p;
		}
	}
	if (n > 0) {
		harmonyMacdropFiles((char **)paths, n);
	}
	free(paths);
	return n > 0;
}

// addMethod adds imp under sel to cls unless cls already has its own;
// the type encoding comes from the protocol, so it is right on every
// architecture.
static void addMethod(Class cls, SEL sel, IMP imp) {
	Protocol *proto = @protocol(NSDraggingDestination);
	struct objc_method_description d = protocol_getMethodDescription(proto, sel, NO, YES);
	if (d.types == NULL) {
		d = protocol_getMethodDescription(proto, sel, YES, YES);
	}
	if (d.types != NULL) {
		class_addMethod(cls, sel, imp, d.types);
	}
}

void harmony_macdrop_attach(uintptr_t viewRef) {
	NSView *view = (__bridge NSView *)(void *)viewRef;
	// The block holds the view until it has run.
	dispatch_async(dispatch_get_main_queue(), ^{
		Class cls = [view class];
		addMethod(cls, @selector(draggingEntered:), (IMP)harmonyDraggingEntered);
		addMethod(cls, @selector(performDragOperation:), (IMP)harmonyPerformDragOperation);
		[view registerForDraggedTypes:@[ NSPasteboardTypeFileURL ]];
	});
}
