package com.example.shop;

/** The app code that fails: its frames are the app's, the JDK's around them are not. */
final class Payments {
  private Payments() {}

  static void charge(String cart) {
    throw new IllegalStateException("card declined for cart " + cart);
  }
}
